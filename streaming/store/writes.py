"""Writes to the stream log. Sync functions: the streaming path calls them through ``run_db``."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.utils import timezone

from citations.models import Chunk, Source
from citations.retrieval import RetrievedChunk
from streaming.models import Conversation, Status, StreamCitation, StreamReplay, StreamSession
from streaming.store import replay
from streaming.text import shorten


class TooManyStreams(Exception):
    """The user already has the maximum number of streams open."""


class ConversationNotFound(Exception):
    """No conversation with that id belongs to the user."""


@dataclass(frozen=True)
class SessionRequest:
    """A stream about to start: what its session row will say."""

    user_id: int
    query: str
    language: str
    model_name: str
    client_kind: str
    conversation_id: uuid.UUID | None = None
    # False: no conversation is kept (the OpenAI API sends its own history).
    start_conversation: bool = True


def open_sessions(
    requests: Sequence[SessionRequest], *, max_concurrent: int, stale_after: timedelta
) -> list[StreamSession | TooManyStreams | ConversationNotFound]:
    """Write the session rows of streams starting together, in one transaction: a session per
    request, or the reason it is refused (the user is at the cap, the conversation is not theirs).

    Counting and inserting under a lock on the users' rows makes the cap exact across processes
    (on SQLite the IMMEDIATE transaction serialises writers anyway). Sessions older than
    ``stale_after`` don't count: they belong to a process that died and will be marked
    interrupted. A continued conversation moves to the top of its owner's list.
    """
    if not requests:
        return []
    now = timezone.now()
    user_ids = sorted({r.user_id for r in requests})
    wanted = {r.conversation_id for r in requests if r.conversation_id is not None}
    with transaction.atomic():
        if connection.features.has_select_for_update:
            # In id order: two batches locking the same users cannot deadlock.
            _lock_users(user_ids)
        active = _active_streams(user_ids, since=now - stale_after)
        owners = (
            dict(Conversation.objects.filter(pk__in=wanted).values_list("pk", "user_id")) if wanted else {}
        )
        results: list[StreamSession | TooManyStreams | ConversationNotFound] = []
        new_conversations: list[Conversation] = []
        continued: set[uuid.UUID] = set()
        for r in requests:
            if active[r.user_id] >= max_concurrent:
                results.append(TooManyStreams())
                continue
            conversation_id = r.conversation_id
            if conversation_id is not None:
                if owners.get(conversation_id) != r.user_id:
                    results.append(ConversationNotFound())
                    continue
                continued.add(conversation_id)
            elif r.start_conversation:
                conversation = Conversation(user_id=r.user_id, title=_title(r.query))
                new_conversations.append(conversation)
                conversation_id = conversation.pk
            active[r.user_id] += 1
            results.append(
                StreamSession(
                    user_id=r.user_id,
                    query=r.query,
                    language=r.language,
                    model_name=r.model_name,
                    client_kind=r.client_kind,
                    conversation_id=conversation_id,
                    created_at=now,
                )
            )
        _insert(new_conversations)
        if continued:
            Conversation.objects.filter(pk__in=continued).update(updated_at=now)
        _insert([r for r in results if isinstance(r, StreamSession)])
    return results


# The start's queries in plain SQL, built from the models' metadata: they run before every
# answer's first token, and the ORM spends ~0.3 ms compiling each (the database ~0.02 ms running it).


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _lock_users(user_ids: Sequence[int]) -> None:
    meta = get_user_model()._meta
    table, pk = connection.ops.quote_name(meta.db_table), connection.ops.quote_name(meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk} FROM {table} WHERE {pk} IN ({_placeholders(len(user_ids))}) "
            f"ORDER BY {pk} FOR UPDATE",
            list(user_ids),
        )
        cursor.fetchall()


def _active_streams(user_ids: Sequence[int], since: datetime) -> Counter[int]:
    """How many sessions each user has ``streaming`` that started at ``since`` or later."""
    meta, qn = StreamSession._meta, connection.ops.quote_name
    user, status, created = (qn(meta.get_field(name).column) for name in ("user", "status", "created_at"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {user}, COUNT(*) FROM {qn(meta.db_table)} WHERE {user} IN "
            f"({_placeholders(len(user_ids))}) AND {status} = %s AND {created} >= %s GROUP BY {user}",
            [
                *user_ids,
                Status.STREAMING.value,
                meta.get_field("created_at").get_db_prep_value(since, connection),
            ],
        )
        return Counter(dict(cursor.fetchall()))


def _insert(objs: Sequence[models.Model]) -> None:
    """Insert new rows of one model, as ``bulk_create`` would (the same field preparation, in
    batches the database accepts). An auto-increment key is left to the database and not read
    back: nothing here needs it."""
    if not objs:
        return
    meta = objs[0]._meta
    columns = [f for f in meta.concrete_fields if f is not meta.auto_field]
    qn = connection.ops.quote_name
    head = f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in columns)}) VALUES "
    row = f"({_placeholders(len(columns))})"
    size = max(1, connection.ops.bulk_batch_size(columns, objs))
    with connection.cursor() as cursor:
        for start in range(0, len(objs), size):
            batch = objs[start : start + size]
            cursor.execute(
                head + ", ".join([row] * len(batch)),
                [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in batch for f in columns],
            )
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias


def _title(query: str) -> str:
    return shorten(query, 120)


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
    # The encoded SSE events, kept for replay until ``replay_until`` (none: not kept).
    replay: Sequence[bytes] = ()
    replay_until: datetime | None = None


# Expired replays are deleted by the outcome writes, at most this often.
PURGE_EVERY = timedelta(minutes=1)
_purged_at: datetime | None = None


def record_outcomes(outcomes: Sequence[tuple[uuid.UUID, Outcome]]) -> list[None]:
    """Write how streams ended, with the citations they streamed and the events kept for
    replay, in one transaction (the outcomes of streams that end together)."""
    global _purged_at
    cited = [chunk for _, outcome in outcomes for _, chunk, _ in outcome.citations]
    # Compressed here, in the database thread: zlib releases the GIL, the event loop goes on.
    replays = [
        StreamReplay(
            session_id=session_id, events=replay.pack(outcome.replay), kept_until=outcome.replay_until
        )
        for session_id, outcome in outcomes
        if outcome.replay and outcome.replay_until is not None
    ]
    now = timezone.now()
    purge = _purged_at is None or now - _purged_at >= PURGE_EVERY
    with transaction.atomic():
        # The knowledge base may have been reloaded during the stream: only link what still exists.
        live_chunks = _existing(Chunk, {c.chunk_id for c in cited})
        live_sources = _existing(Source, {c.source_id for c in cited})
        gone: set[uuid.UUID] = set()
        for session_id, outcome in outcomes:
            if not _update_session(session_id, outcome):  # gone: its user was deleted meanwhile
                gone.add(session_id)
        _insert(
            [
                StreamCitation(
                    session_id=session_id,
                    marker=marker,
                    chunk_id=chunk.chunk_id if chunk.chunk_id in live_chunks else None,
                    source_id=chunk.source_id if chunk.source_id in live_sources else None,
                    title=chunk.title,
                    url=chunk.url,
                    offset=offset,
                )
                for session_id, outcome in outcomes
                if session_id not in gone
                for marker, chunk, offset in outcome.citations
            ]
        )
        _insert([r for r in replays if r.session_id not in gone])
        if purge:
            StreamReplay.objects.filter(kept_until__lt=now).delete()
    if purge:
        _purged_at = now
    return [None] * len(outcomes)


# The columns an outcome writes: its fields that are the session's (not the related rows).
_OUTCOME_FIELDS = tuple(
    f.name for f in fields(Outcome) if f.name not in {"citations", "replay", "replay_until"}
)


def _update_session(session_id: uuid.UUID, outcome: Outcome) -> bool:
    """Write the outcome on the session's row; False when there is no such row."""
    meta, qn = StreamSession._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in _OUTCOME_FIELDS]
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(meta.db_table)} SET {assignments} WHERE {qn(meta.pk.column)} = %s",
            [f.get_db_prep_save(getattr(outcome, f.name), connection) for f in columns]
            + [meta.pk.get_db_prep_value(session_id, connection)],
        )
        return cursor.rowcount > 0


def _existing(model: type[models.Model], ids: set[int]) -> set[int]:
    """Which of ``ids`` are primary keys of ``model`` rows."""
    if not ids:
        return set()
    meta, qn = model._meta, connection.ops.quote_name
    pk = qn(meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk} FROM {qn(meta.db_table)} WHERE {pk} IN ({_placeholders(len(ids))})", list(ids)
        )
        return {row[0] for row in cursor.fetchall()}


def record_outcome(session_id: uuid.UUID, outcome: Outcome) -> None:
    """How one stream ended (``record_outcomes`` for one)."""
    record_outcomes([(session_id, outcome)])


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
