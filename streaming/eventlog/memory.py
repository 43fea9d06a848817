"""A session's event log in this process: the generation task appends, HTTP responses read.

Generation runs as its own asyncio task and writes encoded events here; a response only reads.
That separation is what lets a reader go away (and, later, come back and replay) without the
generation knowing (the run, ``streaming.eventlog.run``, decides when nobody reads any more).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import zlib
from array import array
from collections.abc import AsyncIterator

from streaming.engine.events import Event
from streaming.engine.wire import KEEP_ALIVE
from streaming.store import replay


class EventLog:
    """Append-only list of events, encoded for SSE (``events``) and, when ``keep_typed``, typed
    (``typed``, for endpoints that speak another wire format), with a wake-up for waiting
    readers."""

    __slots__ = ("_blob", "_ends", "_waiters", "closed", "events", "typed")

    def __init__(self, *, keep_typed: bool = True) -> None:
        self.events: list[bytes] = []
        # None: nobody reads typed events (an SSE stream), so none are kept.
        self.typed: list[Event] | None = [] if keep_typed else None
        self.closed = False
        # One future per waiting reader, woken by the next append (a shared one would be
        # cancelled for everyone when one reader's task is cancelled).
        self._waiters: list[asyncio.Future[bool]] = []
        # After compact(): every event in one bytes object, and where each one ends.
        self._blob: bytes | None = None
        self._ends: array[int] | None = None

    def __len__(self) -> int:
        return len(self._ends) if self._ends is not None else len(self.events)

    def compact(self) -> None:
        """A finished log kept for replay: one compressed bytes object instead of an object per
        event (a small fraction of the memory: SSE text is repetitive), and no typed events
        (they serve readers of a running stream). Replays of finished sessions are rare; they
        decompress."""
        if not self.closed or self._blob is not None:
            return
        self._ends = array("I", itertools.accumulate(len(e) for e in self.events))
        self._blob = replay.pack(self.events)
        self.events = []
        if self.typed is not None:
            self.typed = []

    def append(self, data: bytes, event: Event) -> None:
        self.events.append(data)
        if self.typed is not None:
            self.typed.append(event)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    async def wait(self, position: int, at_most: float | None = None) -> None:
        """Until there are more than ``position`` events or the log is closed (or ``at_most``
        seconds have passed)."""
        if len(self.events) > position or self.closed:
            return
        await self._next(at_most)

    def _wake(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(True)

    async def _next(self, at_most: float | None) -> bool:
        """Until the next append or close (True), or ``at_most`` seconds (False). Per event on
        the streaming path, so cheaper than ``asyncio.wait_for``, which makes a task per call."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = None if at_most is None else loop.call_later(at_most, _time_out, waiter)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if waiter.cancelled() or not waiter.done() or not waiter.result():
                with contextlib.suppress(ValueError):  # still listed: timed out or cancelled
                    self._waiters.remove(waiter)

    async def follow(self, start: int = 0, *, keep_alive: float | None = None) -> AsyncIterator[Event | None]:
        """The typed events from index ``start`` on, as they are appended, until the log is
        closed; ``None`` after ``keep_alive`` seconds without one."""
        async for batch in self.follow_batches(start, keep_alive=keep_alive):
            if batch is None:
                yield None
            else:
                for event in batch:
                    yield event

    async def follow_batches(
        self, start: int = 0, *, keep_alive: float | None = None
    ) -> AsyncIterator[list[Event] | None]:
        """``follow``, with the events that are there together (as ``read`` writes them) in one
        list, for a reader that writes each list at once."""
        typed = self.typed
        if typed is None:
            raise RuntimeError("this log keeps no typed events (EventLog(keep_typed=True))")
        position = start
        while True:
            if position < len(typed):
                end = len(typed)
                yield typed[position:end]
                position = end
            elif self.closed:
                return
            elif not await self._next(keep_alive):
                yield None
            else:
                await self._settle()

    async def read(self, start: int = 0, *, keep_alive: float | None = None) -> AsyncIterator[bytes]:
        """Events from index ``start`` on, as they are appended, until the log is closed.
        Events already waiting, and those the producer adds without waiting for the network,
        go out together in one write (``_settle``); after ``keep_alive`` seconds
        without an event a comment line keeps proxies from closing the connection."""
        if self._blob is not None and self._ends is not None:
            if start < len(self._ends):
                yield zlib.decompress(self._blob)[self._ends[start - 1] if start else 0 :]
            return
        position = start
        while True:
            if position < len(self.events):
                end = len(self.events)
                yield self.events[position] if end - position == 1 else b"".join(self.events[position:end])
                position = end
            elif self.closed:
                return
            elif not await self._next(keep_alive):
                yield KEEP_ALIVE
            else:
                await self._settle()

    async def _settle(self) -> None:
        """Woken by an append: let a producer that is still running add what it already has,
        so that it goes out in the same write. Pydantic AI yields to the event loop between the
        deltas of one upstream read (a lock per delta), so without this every delta is its own
        socket write (~35 µs of the server's CPU each, docs/performance.md). One loop round per
        event that came meanwhile, at most ``COALESCE_ROUNDS``; the first round that brings
        nothing (the producer waits for the network) ends it, so a token that is alone is
        written after one round (microseconds), and none waits for a token still to come."""
        for _ in range(COALESCE_ROUNDS):
            seen = len(self.events)
            await asyncio.sleep(0)
            if len(self.events) == seen or self.closed:
                return


# A producer that never waits (a zero-delay model) still reaches the client every this many events.
COALESCE_ROUNDS = 32


def _time_out(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
