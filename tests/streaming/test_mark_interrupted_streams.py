from io import StringIO

import pytest
from django.core.management import call_command

from streaming.models import Status
from tests.conftest import log_session

pytestmark = pytest.mark.django_db


def make(user, minutes_ago, status=Status.STREAMING):
    return log_session(user, minutes_ago, status=status)


def test_only_old_streaming_sessions_become_interrupted(user, settings):
    settings.EVI360_STREAM_TIMEOUT = 60
    settings.EVI360_INTERRUPTED_MARGIN = 60
    dead = make(user, minutes_ago=5)
    live = make(user, minutes_ago=1)
    done = make(user, minutes_ago=10, status=Status.COMPLETED)
    out = StringIO()
    call_command("mark_interrupted_streams", stdout=out)
    assert "1 interrupted" in out.getvalue()
    dead.refresh_from_db()
    assert (dead.status, dead.error_code) == (Status.INTERRUPTED, "interrupted")
    assert dead.finished_at is not None
    live.refresh_from_db()
    done.refresh_from_db()
    assert (live.status, done.status) == (Status.STREAMING, Status.COMPLETED)
