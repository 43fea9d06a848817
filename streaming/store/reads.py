"""Reads of the stream log for the streaming path: running sessions, replays, history. (The
dashboard's figures are streaming/monitoring/stats.py.)"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from streaming.models import Status, StreamReplay, StreamSession
from streaming.store import replay


def streaming_session_ids(older_than: timedelta) -> list[str]:
    """Sessions still ``streaming`` that started more than ``older_than`` ago."""
    cutoff = timezone.now() - older_than
    ids = StreamSession.objects.active().filter(created_at__lt=cutoff).values_list("id", flat=True)
    return [str(i) for i in ids]


def replayed_events(session_id: object, start: int) -> bytes | None:
    """A finished session's SSE events from index ``start`` on, while they are kept (None: they
    are not, or no longer)."""
    packed = (
        StreamReplay.objects.filter(session_id=session_id, kept_until__gt=timezone.now())
        .values_list("events", flat=True)
        .first()
    )
    return None if packed is None else replay.unpack(bytes(packed), start)


def conversation_history(conversation_id: object, limit: int) -> list[tuple[str, str]]:
    """The newest ``limit`` completed turns of a conversation, oldest first, as (question,
    answer). Cancelled, failed, running and superseded (answered again) turns are shown to the
    user but never replayed."""
    if not limit or conversation_id is None:
        return []
    turns = (
        StreamSession.objects.filter(
            conversation_id=conversation_id, status=Status.COMPLETED, superseded=False
        )
        .order_by("-created_at")
        .values_list("query", "answer")[:limit]
    )
    return list(reversed(turns))


def own_turn(user_id: object, session_id: object) -> tuple[str, uuid.UUID | None, str] | None:
    """(question, conversation id, status) of the user's session ``session_id``; None when it is
    not theirs (or not there)."""
    return (
        StreamSession.objects.filter(pk=session_id, user_id=user_id)
        .values_list("query", "conversation_id", "status")
        .first()
    )
