"""Writes to the stream log. Sync functions: the streaming path calls them through ``run_db``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from citations.models import Chunk, Source
from citations.retrieval import RetrievedChunk

from .models import Conversation, Status, StreamCitation, StreamSession


class TooManyStreams(Exception):
    """The user already has the maximum number of streams open."""


class ConversationNotFound(Exception):
    """No conversation with that id belongs to the user."""


def open_session(
    *,
    user_id: int,
    query: str,
    language: str,
    model_name: str,
    client_kind: str,
    conversation_id: uuid.UUID | None,
    max_concurrent: int,
    stale_after: timedelta,
    start_conversation: bool = True,
) -> StreamSession:
    """Write the session row at the start of a stream, unless the user is at the cap.

    Counting and inserting under a lock on the user's row makes the cap exact across processes
    (on SQLite the IMMEDIATE transaction serialises writers anyway). Sessions older than
    ``stale_after`` don't count: they belong to a process that died and will be marked
    interrupted.
    """
    now = timezone.now()
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user_id).first()
        active = StreamSession.objects.filter(
            user_id=user_id, status=Status.STREAMING, created_at__gte=now - stale_after
        ).count()
        if active >= max_concurrent:
            raise TooManyStreams
        conversation = None
        if conversation_id is not None:
            conversation = Conversation.objects.filter(pk=conversation_id, user_id=user_id).first()
            if conversation is None:
                raise ConversationNotFound
            conversation.save(update_fields=["updated_at"])
        elif start_conversation:
            conversation = Conversation.objects.create(user_id=user_id, title=_title(query))
        return StreamSession.objects.create(
            user_id=user_id,
            query=query,
            language=language,
            model_name=model_name,
            client_kind=client_kind,
            conversation=conversation,
            created_at=now,
        )


def _title(query: str) -> str:
    text = " ".join(query.split())
    return text if len(text) <= 120 else text[:119].rsplit(" ", 1)[0] + "…"


@dataclass
class Outcome:
    status: Status
    finished_at: datetime
    duration_ms: int
    answer: str = ""
    error_code: str = ""
    error_message: str = ""
    first_token_at: datetime | None = None
    ttft_ms: int | None = None
    token_events: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    # (marker, cited chunk, character offset of its first appearance in the answer)
    citations: list[tuple[int, RetrievedChunk, int]] = field(default_factory=list)


def record_outcome(session_id: uuid.UUID, outcome: Outcome) -> None:
    """Write how a stream ended, with the citations it streamed, in one transaction."""
    chunk_ids = {chunk.chunk_id for _, chunk, _ in outcome.citations}
    source_ids = {chunk.source_id for _, chunk, _ in outcome.citations}
    with transaction.atomic():
        # The knowledge base may have been reloaded during the stream: only link what still exists.
        live_chunks = set(Chunk.objects.filter(pk__in=chunk_ids).values_list("pk", flat=True))
        live_sources = set(Source.objects.filter(pk__in=source_ids).values_list("pk", flat=True))
        StreamSession.objects.filter(pk=session_id).update(
            status=outcome.status,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            first_token_at=outcome.first_token_at,
            finished_at=outcome.finished_at,
            ttft_ms=outcome.ttft_ms,
            duration_ms=outcome.duration_ms,
            token_events=outcome.token_events,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            answer=outcome.answer,
        )
        StreamCitation.objects.bulk_create(
            StreamCitation(
                session_id=session_id,
                marker=marker,
                chunk_id=chunk.chunk_id if chunk.chunk_id in live_chunks else None,
                source_id=chunk.source_id if chunk.source_id in live_sources else None,
                title=chunk.title,
                url=chunk.url,
                offset=offset,
            )
            for marker, chunk, offset in outcome.citations
        )


def mark_orphaned(session_ids: Iterable[str]) -> int:
    """Sessions whose worker is gone (no worker generates them any more): ``interrupted``, if
    they are still ``streaming``. Returns how many."""
    return StreamSession.objects.filter(pk__in=list(session_ids), status=Status.STREAMING).update(
        status=Status.INTERRUPTED,
        error_code="interrupted",
        error_message="The server stopped while this answer was streaming.",
        finished_at=timezone.now(),
    )


def mark_interrupted(older_than: timedelta) -> int:
    """Sessions still ``streaming`` long after any stream could have ended belong to a process
    that died: mark them ``interrupted``. Returns how many."""
    cutoff = timezone.now() - older_than
    return StreamSession.objects.filter(status=Status.STREAMING, created_at__lt=cutoff).update(
        status=Status.INTERRUPTED,
        error_code="interrupted",
        error_message="The server stopped while this answer was streaming.",
        finished_at=timezone.now(),
    )
