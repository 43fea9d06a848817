"""streaming/store/reads.py: the streaming path's reads of the stream log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streaming.models import Conversation, Status
from streaming.store import reads
from tests.conftest import log_session

pytestmark = pytest.mark.django_db


def test_streaming_session_ids_are_the_running_sessions_older_than_asked(user):
    old = log_session(user, minutes_ago=3, status=Status.STREAMING)
    log_session(user, minutes_ago=0, status=Status.STREAMING)
    log_session(user, minutes_ago=5, status=Status.COMPLETED)
    assert reads.streaming_session_ids(timedelta(minutes=1)) == [str(old.pk)]


def test_conversation_history_is_the_newest_completed_turns_oldest_first(user):
    conversation = Conversation.objects.create(user=user, title="t")
    for minutes, status, query in [
        (4, "completed", "a"),
        (3, "error", "b"),
        (2, "completed", "c"),
        (1, "completed", "d"),
    ]:
        log_session(
            user, minutes, status=status, query=query, answer=query.upper(), conversation=conversation
        )
    assert reads.conversation_history(conversation.pk, 2) == [("c", "C"), ("d", "D")]
    assert reads.conversation_history(conversation.pk, 0) == []
    assert reads.conversation_history(None, 5) == []
