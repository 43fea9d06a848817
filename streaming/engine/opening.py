"""The database work of stream starts that arrive together (``open_starts``, the start batch's
work in ``runtime``): the rate limit, the session rows, the conversations' history, the sources."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest

from citations.query_vectors import VECTORS, Handle, follow_up
from citations.retrieval import Lexical, confident, lexical_matches, retrieve
from citations.vectors import INDEX, Matrix
from streaming.access import auth
from streaming.engine import agent, rate_limit
from streaming.engine.request import StreamRequest
from streaming.models import StreamSession, stale_after
from streaming.store import reads, writes

logger = logging.getLogger(__name__)


class NotAuthenticated(Exception):
    """A JWT's user, read with the start, is gone, inactive, or has changed their password."""


@dataclass(frozen=True)
class PendingStart:
    request: HttpRequest
    session: writes.SessionRequest
    # Given (the OpenAI API sends its own): no conversation is kept.
    history: Sequence[tuple[str, str]] | None
    received_at: float
    claim: auth.Claim | None = None  # a JWT whose user is read with the start
    # The question's embedding (None: dense retrieval off).
    vector: Handle | None = None
    loop: asyncio.AbstractEventLoop | None = None


# Starts whose sources are made ready (full-text search, embedding, retrieval) and handed over
# together: in a burst the first streams start while the trip works on the rest, and eight
# questions embed about as cheaply each as a larger batch (docs/performance.md).
SOURCES_CHUNK = 8


_Opened = StreamRequest | dict[str, Any] | Exception


def open_starts(
    starts: Sequence[PendingStart], settle: Callable[[int, _Opened], None]
) -> list[_Opened | None]:
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
                refused[index] = NotAuthenticated(user)
            else:
                starts[index].request.user = user
                sessions[index] = replace(sessions[index], user_id=user.pk)
    allowed: list[int] = []
    for index, start in enumerate(starts):
        if index in refused:
            continue
        usage = rate_limit.count(start.request)
        if usage and usage["should_limit"]:
            refused[index] = usage
        else:
            allowed.append(index)
    for index, refusal in refused.items():
        settle(index, refusal)
    opened = writes.open_sessions(
        [sessions[index] for index in allowed],
        max_concurrent=settings.EVI360_MAX_CONCURRENT_STREAMS,
        stale_after=stale_after(),
    )
    matrix = _matrix() if any(starts[index].vector is not None for index in allowed) else None
    started = list(zip(allowed, opened, strict=True))
    for index, row in started:
        if isinstance(row, writes.ConversationNotFound | writes.TooManyStreams):
            rate_limit.refund(starts[index].request)
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


def _plan(start: PendingStart, session: StreamSession) -> _Plan:
    """A start's history and full-text matches: what decides whether its question is embedded."""
    history = start.history
    if history is None:
        # A continued conversation's completed turns; a new one has none yet.
        history = (
            reads.conversation_history(session.conversation_id, settings.EVI360_HISTORY_TURNS)
            if start.session.conversation_id or start.session.chat
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
    start: PendingStart, plan: _Plan, matrix: Matrix | None = None, vector: np.ndarray | None = None
) -> StreamRequest:
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
    return StreamRequest(
        session=session,
        history=plan.history,
        retrieval_query=plan.retrieval_query,
        sources=sources,
        received_at=start.received_at,
    )
