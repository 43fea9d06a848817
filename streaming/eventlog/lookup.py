"""Where a session's events are read from, and how a session is stopped, whichever worker runs
it: this process's run, else the shared log (another worker's run, or a finished one), else the
database's replay (``StreamReplay``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from django.conf import settings

from evi360.db import run_db
from streaming.engine.events import STOP_REQUESTED
from streaming.engine.wire import encode_retry
from streaming.eventlog import RUNS, shared, sse_body
from streaming.eventlog.base import SharedEventLog
from streaming.store.reads import replayed_events


@dataclass(frozen=True)
class Body:
    """The SSE body to answer with: the retry preamble, then the events from ``start`` on."""

    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class NoMoreEvents:
    """The session has ended and nothing is left after ``start`` (a reconnect after its end)."""


@dataclass(frozen=True)
class Gone:
    """Nobody keeps the session's events (it never ran here, or its retention has passed)."""


Found = Body | NoMoreEvents | Gone


async def events_of(session_id: str, start: int) -> Found:
    """The session's events from index ``start`` on."""
    run = RUNS.get(session_id)
    log = shared() if run is None else None
    if log is not None and await log.has_events(session_id):
        # Generated (or being generated) by another worker: read it from the shared log.
        if start and await log.ended_before(session_id, start):
            return NoMoreEvents()
        return Body(_shared_body(log, session_id, start))
    if run is None:
        kept = await run_db(replayed_events, session_id, start)
        if kept is None:
            return Gone()
        return Body(_replay_body(kept)) if kept else NoMoreEvents()
    if run.log.closed and start >= len(run.log):
        return NoMoreEvents()
    return Body(sse_body(run, start))


async def stop(session_id: str) -> bool:
    """Stop the session's generation: this process's, or any worker's through the shared log.
    False when nobody generates it."""
    run = RUNS.get(session_id)
    if run is not None:
        if run.task is None or run.task.done():
            return False
        run.task.cancel(STOP_REQUESTED)
        return True
    log = shared()
    return log is not None and await log.request_cancel(session_id)


async def _shared_body(log: SharedEventLog, session_id: str, start: int) -> AsyncIterator[bytes]:
    yield encode_retry(settings.EVI360_SSE_RETRY_MS)
    async for chunk in log.read(session_id, start, keep_alive=settings.EVI360_SSE_KEEPALIVE):
        yield chunk


async def _replay_body(events: bytes) -> AsyncIterator[bytes]:
    yield encode_retry(settings.EVI360_SSE_RETRY_MS) + events
