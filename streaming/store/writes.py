"""Writes to the stream log. Sync functions: the streaming path calls them through ``run_db``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from citations.models import Chunk, Source
from citations.retrieval import RetrievedChunk
from streaming.models import Conversation, Status, StreamCitation, StreamReplay, StreamSession
from streaming.store import fast_sql, replay
from streaming.text import shorten


class TooManyStreams(Exception):
    """The user already has the maximum number of streams open."""


class ConversationNotFound(Exception):
    """No conversation with that id belongs to the user."""


@dataclass(frozen=True)
class Chat:
    """An AI SDK chat that a stream continues, by the client's chat id: its conversation, made
    when the id is new. ``regenerate``: the stream answers the chat's last question again, and
    the turn it replaces (``message_id``, the AI SDK's id of that answer: our session id; else
    the chat's latest turn) and the turns after it leave the history."""

    chat_id: str
    regenerate: bool = False
    message_id: str | None = None


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
    # Set (the AI SDK's chats): the conversation is the chat's, ``conversation_id`` is unused.
    chat: Chat | None = None
    # Set: this stream answers that earlier session of ``conversation_id`` again.
    regenerates: uuid.UUID | None = None


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
            fast_sql.lock_rows(get_user_model(), user_ids)
        active = fast_sql.streams_since(user_ids, Status.STREAMING.value, since=now - stale_after)
        owners = (
            dict(Conversation.objects.filter(pk__in=wanted).values_list("pk", "user_id")) if wanted else {}
        )
        chats = _chats([r.chat for r in requests if r.chat is not None])
        results: list[StreamSession | TooManyStreams | ConversationNotFound] = []
        new_conversations: list[Conversation] = []
        continued: set[uuid.UUID] = set()
        for r in requests:
            if active[r.user_id] >= max_concurrent:
                results.append(TooManyStreams())
                continue
            conversation_id = r.conversation_id
            if r.chat is not None:
                known = chats.get(r.chat.chat_id)
                if known is None:
                    conversation = Conversation(
                        user_id=r.user_id, title=_title(r.query), chat_id=r.chat.chat_id
                    )
                    new_conversations.append(conversation)
                    # A second start of the same new chat in this batch continues this one.
                    chats[r.chat.chat_id] = (conversation.pk, r.user_id)
                    conversation_id = conversation.pk
                elif known[1] != r.user_id:
                    results.append(ConversationNotFound())
                    continue
                else:
                    conversation_id = known[0]
                    continued.add(conversation_id)
                    if r.chat.regenerate:
                        _supersede(conversation_id, r.chat.message_id)
            elif conversation_id is not None:
                if owners.get(conversation_id) != r.user_id:
                    results.append(ConversationNotFound())
                    continue
                if r.regenerates is not None and not _supersede_turn(conversation_id, r.regenerates):
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
                    regenerates_id=r.regenerates,
                )
            )
        fast_sql.insert(new_conversations)
        if continued:
            Conversation.objects.filter(pk__in=continued).update(updated_at=now)
        fast_sql.insert([r for r in results if isinstance(r, StreamSession)])
    return results


def _chats(wanted: Sequence[Chat]) -> dict[str, tuple[uuid.UUID, int]]:
    """The known chats among ``wanted``: chat id -> (conversation id, owner). A chat id that is
    one of our conversation ids (a chat the client opened from the conversations API) is that
    conversation."""
    if not wanted:
        return {}
    ids = {c.chat_id for c in wanted}
    found = {
        chat_id: (pk, user_id)
        for pk, user_id, chat_id in Conversation.objects.filter(chat_id__in=ids).values_list(
            "pk", "user_id", "chat_id"
        )
    }
    as_uuid = {}
    for chat_id in ids - found.keys():
        with contextlib.suppress(ValueError):
            as_uuid[uuid.UUID(chat_id)] = chat_id
    if as_uuid:
        for pk, user_id in Conversation.objects.filter(pk__in=as_uuid).values_list("pk", "user_id"):
            found[as_uuid[pk]] = (pk, user_id)
    return found


def _supersede(conversation_id: uuid.UUID, message_id: str | None) -> None:
    """Take the turn answered again, and those after it, out of the conversation's history: the
    turn ``message_id`` (a session id) when it is this conversation's, else the latest."""
    turns = StreamSession.objects.filter(conversation_id=conversation_id, superseded=False)
    first = None
    if message_id is not None:
        with contextlib.suppress(ValueError):
            first = turns.filter(pk=uuid.UUID(message_id)).values_list("created_at", flat=True).first()
    if first is None:
        first = turns.order_by("-created_at").values_list("created_at", flat=True).first()
    if first is not None:
        turns.filter(created_at__gte=first).update(superseded=True)


def _supersede_turn(conversation_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    """Take the turn ``session_id`` and those after it out of the conversation's history (also
    when it was answered again before); False when it is not this conversation's."""
    turns = StreamSession.objects.filter(conversation_id=conversation_id)
    first = turns.filter(pk=session_id).values_list("created_at", flat=True).first()
    if first is None:
        return False
    turns.filter(created_at__gte=first, superseded=False).update(superseded=True)
    return True


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


class Every:
    """Says whether something done at most once an ``interval`` (in this process) is due."""

    def __init__(self, interval: timedelta) -> None:
        self.interval = interval
        self.last: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self.last is None or now - self.last >= self.interval

    def done(self, now: datetime) -> None:
        self.last = now


# Expired replays are deleted by the outcome writes, at most this often.
PURGE_EVERY = timedelta(minutes=1)
REPLAY_PURGE = Every(PURGE_EVERY)


def record_outcomes(outcomes: Sequence[tuple[uuid.UUID, Outcome]]) -> list[None]:
    """Write how streams ended, with the citations they streamed and the events kept for
    replay, in one transaction (the outcomes of streams that end together)."""
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
    purge = REPLAY_PURGE.due(now)
    with transaction.atomic():
        # The knowledge base may have been reloaded during the stream: only link what still exists.
        live_chunks = fast_sql.existing(Chunk, {c.chunk_id for c in cited})
        live_sources = fast_sql.existing(Source, {c.source_id for c in cited})
        gone: set[uuid.UUID] = set()
        for session_id, outcome in outcomes:
            if not _update_session(session_id, outcome):  # gone: its user was deleted meanwhile
                gone.add(session_id)
        fast_sql.insert(
            [
                StreamCitation(
                    session_id=session_id,
                    marker=marker,
                    chunk_id=chunk.chunk_id if chunk.chunk_id in live_chunks else None,
                    source_id=chunk.source_id if chunk.source_id in live_sources else None,
                    title=chunk.title,
                    url=chunk.url,
                    text=chunk.text,  # retrieved with the passage: no query of its own
                    page=chunk.page,
                    offset=offset,
                )
                for session_id, outcome in outcomes
                if session_id not in gone
                for marker, chunk, offset in outcome.citations
            ]
        )
        fast_sql.insert([r for r in replays if r.session_id not in gone])
        if purge:
            StreamReplay.objects.filter(kept_until__lt=now).delete()
    if purge:
        REPLAY_PURGE.done(now)
    return [None] * len(outcomes)


# The columns an outcome writes: its fields that are the session's (not the related rows).
_OUTCOME_FIELDS = tuple(
    f.name for f in fields(Outcome) if f.name not in {"citations", "replay", "replay_until"}
)


def _update_session(session_id: uuid.UUID, outcome: Outcome) -> bool:
    """Write the outcome on the session's row; False when there is no such row."""
    return fast_sql.update_row(
        StreamSession, session_id, {name: getattr(outcome, name) for name in _OUTCOME_FIELDS}
    )


def record_outcome(session_id: uuid.UUID, outcome: Outcome) -> None:
    """How one stream ended (``record_outcomes`` for one)."""
    record_outcomes([(session_id, outcome)])


def mark_orphaned(session_ids: Iterable[str]) -> int:
    """Sessions whose worker is gone (no worker generates them any more): ``interrupted``, if
    they are still ``streaming``. Returns how many."""
    return StreamSession.objects.filter(pk__in=list(session_ids)).interrupt()


def mark_interrupted() -> int:
    """Stale sessions (``StreamSession.objects.stale()``) belong to a process that died: mark
    them ``interrupted``. Returns how many."""
    return StreamSession.objects.stale().interrupt()
