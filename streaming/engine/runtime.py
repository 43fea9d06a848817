"""This process's engine state, in one object (``RUNTIME``): whether it is draining and which
streams the drain interrupted, the start and outcome batches, the background writes of outcomes
the database refused, and whether the signals were taken over. The runs themselves are in
``streaming.eventlog``'s ``RUNS``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from evi360.db import Batch, run_db
from streaming.engine.events import CANCELLED
from streaming.engine.opening import PendingStart, open_starts
from streaming.engine.request import StreamRequest
from streaming.store import writes

# The outcome lines belong with the stream-end lines (docs/operations.md names the logger).
logger = logging.getLogger("streaming.engine.generate")

# Seconds between attempts to write an outcome the database refused (about 20 minutes in all).
RETRY_DELAYS = (0.5, 1, 2, 5, 10, 30, 60, *(120,) * 9)


def _write_outcomes(outcomes: Sequence[tuple[uuid.UUID, writes.Outcome]]) -> list[None]:
    return writes.record_outcomes(outcomes)  # looked up per call: tests replace it


class Runtime:
    """The engine state of this process; one instance, ``RUNTIME``."""

    def __init__(self) -> None:
        self.draining = False  # shutting down: no new streams
        # Sessions whose generation was cancelled by the shutdown (not by their client).
        self.interrupted: set[str] = set()
        self.signals_taken = False
        self.retry_delays = RETRY_DELAYS
        # Outcome writes running on their own (kept until they end; the drain waits for them).
        self.background: set[asyncio.Task[None]] = set()
        # Starts (and outcomes) that arrive together go to the database in one trip.
        self.starts: Batch[PendingStart, Any] = Batch(
            open_starts, abandoned=self._never_started, settles_early=True
        )
        self.outcomes: Batch[tuple[uuid.UUID, writes.Outcome], None] = Batch(_write_outcomes)

    async def record(self, session_id: uuid.UUID, outcome: writes.Outcome) -> bool:
        """Write an outcome with the others that end meanwhile; False: the database refused it."""
        try:
            await self.outcomes.submit((session_id, outcome))
        except DatabaseError as exc:
            logger.warning("stream %s: could not record its outcome yet (%s); retrying", session_id, exc)
            return False
        return True

    def keep_trying(self, session_id: object, outcome: writes.Outcome) -> None:
        """Write an outcome the database refused, in the background, until it is back."""

        async def retry() -> None:
            for delay in self.retry_delays:
                await asyncio.sleep(delay)
                try:
                    await run_db(writes.record_outcome, session_id, outcome)
                except DatabaseError:
                    continue
                logger.warning("stream %s: outcome recorded after the database came back", session_id)
                return
            logger.error("stream %s: outcome %s lost: the database stayed away", session_id, outcome.status)

        self.track(retry(), session_id)

    def track(self, writing: Coroutine[None, None, None], session_id: object) -> None:
        """Run an outcome write in a task of its own, kept until it ends."""
        task = asyncio.get_running_loop().create_task(writing, name=f"record-{session_id}")
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def settled(self) -> None:
        """Wait for the background writes, those started meanwhile included (tests)."""
        while self.background:
            await asyncio.wait(list(self.background))

    def record_unstarted(self, request: StreamRequest) -> None:
        """A session whose row was written but whose client went away before its generation
        started: recorded ``cancelled``, like a stream cut later."""
        started = request.received_at or time.monotonic()
        outcome = writes.Outcome(
            status=CANCELLED.status,  # type: ignore[arg-type]
            finished_at=timezone.now(),
            duration_ms=round((time.monotonic() - started) * 1000),
            error_code=CANCELLED.code,
            error_message=CANCELLED.recorded,
        )
        session_id = request.session.id

        async def write() -> None:
            if not await self.record(session_id, outcome):
                self.keep_trying(session_id, outcome)

        self.track(write(), session_id)

    def _never_started(self, start: PendingStart, opened: object) -> None:
        """The caller went away while its session row was being written: record it cancelled."""
        if isinstance(opened, StreamRequest):
            self.record_unstarted(opened)


RUNTIME = Runtime()
