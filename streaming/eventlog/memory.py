"""Per-session event logs: the generation task appends, HTTP responses read.

Generation runs as its own asyncio task and writes encoded events here; a response only reads.
That separation is what lets a reader go away (and, later, come back and replay) without the
generation knowing. When the last reader leaves, the generation is cancelled after the run's
grace: ``EVI360_RESUME_GRACE`` seconds (default 15) for sessions created to be read from their
``events_url`` (EventSource reconnects), none for a stream read in the request that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import zlib
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType

from streaming.engine.events import (
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    SessionEvent,
    TokenEvent,
)
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


@dataclass
class StreamRun:
    """One generation: its log, its task and how many responses read it."""

    session_id: str
    # Seconds the generation goes on once its last reader has left (a reconnect may come).
    grace: float = 0.0
    log: EventLog = field(default_factory=EventLog)
    task: asyncio.Task[None] | None = None
    readers: int = 0
    # With the Redis event log: the task copying the log to Redis, and how many readers other
    # workers have (they count too before the generation is cancelled for lack of readers).
    mirror: asyncio.Task[None] | None = None
    remote_readers: Callable[[], Awaitable[int]] | None = None
    # Finished and kept in this process for replays (its replay is not in the database).
    retained: bool = False
    _cancel_handle: asyncio.TimerHandle | None = None

    def expect_reader(self, timeout: float) -> None:
        """Cancel the generation unless a reader arrives within ``timeout`` seconds (a web page
        that created a session and then never opened its EventSource)."""
        if self.readers == 0 and self.task is not None:
            self._arm(timeout)

    def _arm(self, delay: float) -> None:
        self._cancel_handle = asyncio.get_running_loop().call_later(delay, self._cancel_if_unread, delay)

    def _cancel_if_unread(self, delay: float) -> None:
        self._cancel_handle = None
        if self.readers > 0 or self.task is None or self.task.done():
            return
        if self.remote_readers is None:
            self.task.cancel()
            return

        async def check(task: asyncio.Task[None], count: Callable[[], Awaitable[int]]) -> None:
            if await count() > 0:
                if self.readers == 0 and not task.done() and self._cancel_handle is None:
                    self._arm(delay)  # read elsewhere: look again later
            elif self.readers == 0:
                task.cancel()

        asyncio.get_running_loop().create_task(check(self.task, self.remote_readers))

    def add_reader(self) -> None:
        self.readers += 1
        if self._cancel_handle is not None:
            self._cancel_handle.cancel()
            self._cancel_handle = None

    def remove_reader(self) -> None:
        self.readers -= 1
        if self.readers == 0 and self.retained and self.log.typed is None:
            # Finished and read by nobody now: from here on only replays read it, compacted.
            self.log.compact()
        if self.readers > 0 or self.task is None or self.task.done():
            return
        if self.grace <= 0:
            self.task.cancel()
        else:
            self._arm(self.grace)


@dataclass
class Collected:
    """A whole answer, read from a run's typed events."""

    session: SessionEvent | None = None
    text: str = ""
    citations: dict[int, CitationEvent] = field(default_factory=dict)
    done: DoneEvent | None = None
    error: ErrorEvent | None = None


async def collect(run: StreamRun) -> Collected:
    """Wait for the run to end and return its answer (for clients that cannot read a stream).
    Counts as a reader meanwhile, so a client that goes away cancels the generation."""
    result = Collected()
    parts: list[str] = []
    run.add_reader()
    try:
        async for event in run.log.follow():
            if isinstance(event, TokenEvent):
                parts.append(event.text)
            elif isinstance(event, CitationEvent):
                result.citations[event.marker] = event
            elif isinstance(event, SessionEvent):
                result.session = event
            elif isinstance(event, DoneEvent):
                result.done = event
            elif isinstance(event, ErrorEvent):
                result.error = event
    finally:
        run.remove_reader()
    result.text = "".join(parts)
    return result


# Runs of this process, by session id: running ones, and finished ones until their replay is in
# the database (``StreamReplay``). A response reading a run holds the run itself, so a run leaves
# here as soon as it has ended: later readers read the database. Only when the database could not
# take the replay (it was away) does the run stay here ``EVI360_EVENT_RETENTION`` seconds, so a
# client that reconnects still reads it.
RUNS: dict[str, StreamRun] = {}


def shared_log() -> ModuleType | None:
    """The Redis event log (``streaming.eventlog.redis``) when it is configured, else None.
    Imported only then: redis-py costs a process ~5.5 MiB it has no use for otherwise."""
    from django.conf import settings

    if settings.EVI360_EVENT_LOG != "redis":
        return None
    from streaming.eventlog import redis as redis_eventlog

    return redis_eventlog


# A finished log kept here is compacted once nobody reads it: an SSE stream's as soon as its
# reader has read it all (replays read the compacted log as well); one that keeps typed events
# this long after its end (the response that reads them may attach just after the generation ended).
COMPACT_AFTER = 5.0


def retire(run: StreamRun, after: float, *, replay_stored: bool = False) -> None:
    """Forget a finished run: at once when its replay is in the database (``replay_stored``) or
    none is kept (``after`` <= 0), else after ``after`` seconds, compacting its log meanwhile."""

    def forget() -> None:
        if RUNS.get(run.session_id) is run:
            del RUNS[run.session_id]

    if after <= 0 or replay_stored:
        if run.mirror is not None and not run.mirror.done():
            # Shutdown waits for the Redis copies of the runs listed here: this one's last ones too.
            run.mirror.add_done_callback(lambda _: forget())
        else:
            forget()
        return

    def compact() -> None:
        if run.readers > 0:  # still being read: compacting would cut the reader's log short
            loop.call_later(COMPACT_AFTER, compact)
        else:
            run.log.compact()
            if run.task is not None and run.task.done():
                run.task = None  # a finished task and what it holds, kept an hour for nothing

    run.retained = True
    loop = asyncio.get_running_loop()
    if run.readers == 0 and run.log.typed is None:
        # Nobody reads it now, and a late reader reads the compacted bytes as well.
        compact()
    else:
        loop.call_later(min(after, COMPACT_AFTER), compact)
    loop.call_later(after, forget)


async def stream_response(
    run: StreamRun, *, preamble: bytes, keep_alive: float, start: int = 0
) -> AsyncIterator[bytes]:
    """The body of an SSE response: the preamble, then the run's events as they come.

    Django cancels this iterator with CancelledError when the client disconnects; the reader
    count drops then, which cancels the generation when nobody is left to read it.
    """
    run.add_reader()
    try:
        yield preamble
        async for chunk in run.log.read(start, keep_alive=keep_alive):
            yield chunk
    finally:
        run.remove_reader()
