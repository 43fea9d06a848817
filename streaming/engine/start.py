"""Starting a stream, for every endpoint that starts one (SSE API, web page, OpenAI-compatible):
the rate limit, the per-user cap, the session row, then the generation task. Refusals are raised
as ``StreamRefused``, which each endpoint renders in its own error shape."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import caches
from django.db import DatabaseError
from django.http import HttpRequest
from django_ratelimit import core as ratelimit

from citations.language import resolve_language
from citations.query_vectors import VECTORS, Handle, follow_up
from citations.retrieval import Lexical, confident, lexical_matches, retrieve
from citations.vectors import INDEX, Matrix
from evi360.db import Batch
from streaming.access import auth
from streaming.engine import agent, shutdown
from streaming.engine import generate as generation
from streaming.eventlog import StreamRun
from streaming.models import StreamSession
from streaming.store import reads as selectors
from streaming.store import writes as services

logger = logging.getLogger(__name__)


class _NotAuthenticated(Exception):
    """A JWT's user, read with the start, is gone, inactive, or has changed their password."""


class StreamRefused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


RATE_GROUP = "stream-query"


def _rate_limit(request: HttpRequest) -> dict[str, Any] | None:
    # django-ratelimit's decorator is sync-only; its core is called here, counting per user in
    # the shared cache (Redis when REDIS_URL is set).
    return ratelimit.get_usage(
        request, group=RATE_GROUP, key="user", rate=settings.EVI360_RATE_LIMIT, increment=True
    )


def _refund(request: HttpRequest) -> None:
    """Give back the count of a start refused after it was counted (unknown conversation,
    concurrency cap): nothing ran, so it must not use up the user's rate limit. Counted first and
    given back, not checked first and counted after: two workers cannot both take the last one."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    # django-ratelimit has no call for this: its key is rebuilt as get_usage builds it.
    rate = settings.EVI360_RATE_LIMIT
    _, period = ratelimit._split_rate(rate)
    value = ratelimit._SIMPLE_KEYS["user"](request)
    window = ratelimit._get_window(value, period)
    key = ratelimit._make_cache_key(RATE_GROUP, window, rate, value, ratelimit.ALL)
    try:
        caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")].decr(key)
    except ValueError:  # the window has turned meanwhile: the count it was in is gone
        pass


async def begin_stream(
    request: HttpRequest,
    user: AbstractBaseUser | auth.Claim,
    *,
    query: str,
    requested_language: str | None,
    conversation_id: uuid.UUID | None,
    client_kind: str,
    received_at: float,
    history: Sequence[tuple[str, str]] | None = None,
    resume_grace: float = 0.0,
    keep_typed: bool = True,
) -> StreamRun:
    """Start a stream. ``history`` given (the OpenAI API sends its own) means no conversation is
    kept; otherwise the stream continues ``conversation_id`` (or starts a new conversation) and the
    history is that conversation's completed turns. ``keep_typed=False``: the response reads
    only SSE bytes (less memory per stream). ``user`` may be a checked JWT's ``Claim``: its user
    is read in the start's trip to a database thread, and refused (401) there if unusable."""
    if shutdown.draining():
        # Nothing was done: the client (or nginx's proxy_next_upstream) may try another worker.
        raise StreamRefused(
            503, "shutting_down", "This server is restarting; try again.", {"Retry-After": "1"}
        )
    claim = user if isinstance(user, auth.Claim) else None
    if claim is None:
        request.user = user
    language = resolve_language(query, requested_language)
    # The question's embedding: a provider's request goes out now, while the start's database
    # trip does the rest; the built-in model embeds in that trip (citations/query_vectors.py).
    vector = VECTORS.request(query)
    start = _Start(
        request,
        services.SessionRequest(
            user_id=claim.user_id if claim else user.pk,  # type: ignore[union-attr]
            query=query,
            language=language,
            model_name=agent.model_display_name(),
            client_kind=client_kind,
            conversation_id=conversation_id,
            start_conversation=history is None,
        ),
        history,
        received_at,
        claim,
        vector,
        asyncio.get_running_loop(),
    )
    try:
        opened = await _STARTS.submit(start)
    except _NotAuthenticated as refused:
        raise StreamRefused(
            401, "not_authenticated", str(refused), {"WWW-Authenticate": 'Bearer realm="api"'}
        ) from None
    except services.ConversationNotFound:
        raise StreamRefused(404, "conversation_not_found", "There is no such conversation.") from None
    except services.TooManyStreams:
        raise StreamRefused(
            503,
            "too_many_streams",
            f"You already have {settings.EVI360_MAX_CONCURRENT_STREAMS} answers streaming; "
            "wait for one to finish.",
            {"Retry-After": "5"},
        ) from None
    if isinstance(opened, dict):  # the rate limit's usage: over the limit
        retry_after = max(1, opened["time_left"])
        raise StreamRefused(
            429,
            "rate_limited",
            f"Too many questions; try again in {retry_after} s.",
            {"Retry-After": str(retry_after)},
        )
    return generation.start(opened, resume_grace=resume_grace, keep_typed=keep_typed)


@dataclass(frozen=True)
class _Start:
    request: HttpRequest
    session: services.SessionRequest
    # Given (the OpenAI API sends its own): no conversation is kept.
    history: Sequence[tuple[str, str]] | None
    received_at: float
    claim: auth.Claim | None = None  # a JWT whose user is read with the start
    # The question's embedding (None: dense retrieval off).
    vector: Handle | None = None
    loop: asyncio.AbstractEventLoop | None = None


# Starts whose sources are made ready (full-text search, embedding, retrieval) and handed to
# their callers together: in a burst the first streams start while the trip still works on the
# rest, instead of all waiting for the last. Eight questions embed at ~0.85 ms each, as cheaply
# as fifty (one alone: ~1.6 ms).
SOURCES_CHUNK = 8


_Opened = generation.StreamRequest | dict[str, Any] | Exception


def _open(starts: Sequence[_Start], settle: Callable[[int, _Opened], None]) -> list[_Opened | None]:
    """The database work of starts that arrive together, in one trip to a database thread and
    one write transaction (each trip is a hand-off between threads, and SQLite serialises write
    transactions): the rate limit, the session rows, the conversations' history, the sources.
    Per start: what the generation needs, the rate limit's usage when over the limit, or why the
    start is refused; each ``settle``d as soon as it is known (``evi360.db.Batch``)."""
    sessions = [start.session for start in starts]
    refused: dict[int, dict[str, Any] | Exception] = {}
    claimed = [index for index, start in enumerate(starts) if start.claim is not None]
    if claimed:
        users = auth.users_of([starts[index].claim for index in claimed])  # type: ignore[misc]
        for index, user in zip(claimed, users, strict=True):
            if isinstance(user, str):
                refused[index] = _NotAuthenticated(user)
            else:
                starts[index].request.user = user
                sessions[index] = replace(sessions[index], user_id=user.pk)
    allowed: list[int] = []
    for index, start in enumerate(starts):
        if index in refused:
            continue
        usage = _rate_limit(start.request)
        if usage and usage["should_limit"]:
            refused[index] = usage
        else:
            allowed.append(index)
    for index, refusal in refused.items():
        settle(index, refusal)
    opened = services.open_sessions(
        [sessions[index] for index in allowed],
        max_concurrent=settings.EVI360_MAX_CONCURRENT_STREAMS,
        stale_after=timedelta(seconds=settings.EVI360_STREAM_TIMEOUT + settings.EVI360_INTERRUPTED_MARGIN),
    )
    matrix = _matrix() if any(starts[index].vector is not None for index in allowed) else None
    started = list(zip(allowed, opened, strict=True))
    for index, row in started:
        if isinstance(row, services.ConversationNotFound | services.TooManyStreams):
            _refund(starts[index].request)
    for first in range(0, len(started), SOURCES_CHUNK):
        chunk = started[first : first + SOURCES_CHUNK]
        plans = [None if isinstance(row, Exception) else _plan(starts[i], row) for i, row in chunk]
        # The questions that full-text search does not answer alone, embedded (or waited for) together.
        vectors = VECTORS.resolve(
            [
                starts[index].vector
                if plan is not None and matrix is not None and not confident(plan.lexical)
                else None
                for (index, _), plan in zip(chunk, plans, strict=True)
            ]
        )
        for (index, session), plan, vector in zip(chunk, plans, vectors, strict=True):
            settle(index, session if plan is None else _prepare(starts[index], plan, matrix, vector))
    return [None] * len(starts)  # every start is settled by now


def _matrix() -> Matrix | None:
    """The passage vectors, once per batch of starts (one version check, a reload if it moved)."""
    try:
        return INDEX.current()
    except DatabaseError:
        logger.warning("could not read the passage vectors; this batch of starts uses full-text search")
        return None


@dataclass(frozen=True)
class _Plan:
    session: StreamSession
    history: Sequence[tuple[str, str]]
    retrieval_query: str | None
    lexical: Lexical | None  # None: the full-text search failed (the generation retries)


def _plan(start: _Start, session: StreamSession) -> _Plan:
    """A start's history and full-text matches: what decides whether its question is embedded."""
    history = start.history
    if history is None:
        # A continued conversation's completed turns; a new one has none yet.
        history = (
            selectors.conversation_history(session.conversation_id, settings.EVI360_HISTORY_TURNS)
            if start.session.conversation_id
            else []
        )
    # A follow-up ("en voor zwangere werknemers?") is searched together with the question before it.
    retrieval_query = f"{history[-1][0]} {start.session.query}" if history else None
    try:
        lexical = lexical_matches(
            retrieval_query or start.session.query, session.language, settings.EVI360_RETRIEVAL_K
        )
    except DatabaseError:
        lexical = None
    return _Plan(session, history, retrieval_query, lexical)


def _prepare(
    start: _Start, plan: _Plan, matrix: Matrix | None = None, vector: np.ndarray | None = None
) -> generation.StreamRequest:
    session = plan.session
    if vector is not None and plan.history and start.loop is not None:
        # A follow-up's vector: its own and the previous question's (usually kept already).
        vector = follow_up(vector, VECTORS.in_thread(plan.history[-1][0], start.loop))
    try:
        if plan.lexical is None:
            raise DatabaseError("the full-text search failed")
        chunks = retrieve(
            plan.retrieval_query or start.session.query,
            session.language,
            settings.EVI360_RETRIEVAL_K,
            vector=vector,
            matrix=matrix,
            lexical=plan.lexical,
        )
    except DatabaseError:
        logger.warning("retrieval failed at the start of stream %s; the generation retries it", session.id)
        sources = None
    else:
        sources = agent.numbered(chunks)
    return generation.StreamRequest(
        session=session,
        history=plan.history,
        retrieval_query=plan.retrieval_query,
        sources=sources,
        received_at=start.received_at,
    )


def _never_started(start: _Start, opened: generation.StreamRequest | dict[str, Any]) -> None:
    """The caller went away while its session row was being written: record it cancelled."""
    if isinstance(opened, generation.StreamRequest):
        generation.record_unstarted(opened)


_STARTS = Batch(_open, abandoned=_never_started, settles_early=True)
