"""streaming/models.py: the stream sessions' QuerySet and the one stale cutoff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from streaming.models import Status, StreamSession, stale_after, stale_cutoff
from streaming.store import writes
from tests.conftest import log_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def margins(settings):
    settings.EVI360_STREAM_TIMEOUT = 60
    settings.EVI360_INTERRUPTED_MARGIN = 30


def test_the_stale_cutoff_is_the_timeout_plus_the_margin_ago(margins):
    now = timezone.now()
    assert stale_after() == timedelta(seconds=90)
    assert stale_cutoff(now) == now - timedelta(seconds=90)


def test_active_stale_and_of_user(margins, user, django_user_model):
    other = django_user_model.objects.create_user("other", password="x")
    live = log_session(user, minutes_ago=1, status=Status.STREAMING)
    dead = log_session(user, minutes_ago=2, status=Status.STREAMING)
    theirs = log_session(other, minutes_ago=5, status=Status.STREAMING)
    log_session(user, minutes_ago=10, status=Status.COMPLETED)
    sessions = StreamSession.objects
    assert set(sessions.active()) == {live, dead, theirs}
    assert set(sessions.stale()) == {dead, theirs}
    # Two minutes on, the live one is stale too.
    assert set(sessions.stale(timezone.now() + timedelta(minutes=2))) == {live, dead, theirs}
    assert set(sessions.of_user(other)) == {theirs}
    assert set(sessions.of_user(user).stale()) == {dead}


def test_marking_interrupted_and_orphaned_touch_only_streaming_sessions(margins, user):
    live = log_session(user, minutes_ago=1, status=Status.STREAMING)
    dead = log_session(user, minutes_ago=2, status=Status.STREAMING)
    done = log_session(user, minutes_ago=3, status=Status.COMPLETED)
    assert writes.mark_interrupted() == 1
    assert writes.mark_orphaned([str(live.pk), str(dead.pk), str(done.pk)]) == 1
    for session in (live, dead, done):
        session.refresh_from_db()
    assert (live.status, dead.status, done.status) == (
        Status.INTERRUPTED,
        Status.INTERRUPTED,
        Status.COMPLETED,
    )
    assert live.error_code == dead.error_code == "interrupted" and done.error_code == ""
    assert live.finished_at is not None and done.finished_at is None
