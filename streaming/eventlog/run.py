"""A generation in this process (``StreamRun``), the runs of this process (``RUNS``), and how a
finished one is forgotten (``retire``).

When the last reader leaves, the generation is cancelled after the run's grace:
``EVI360_RESUME_GRACE`` seconds (default 15) for sessions created to be read from their
``events_url`` (EventSource reconnects), none for a stream read in the request that started it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from streaming.eventlog.memory import EventLog


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


# Runs of this process, by session id: running ones, and finished ones until their replay is in
# the database (``StreamReplay``). A response reading a run holds the run itself, so a run leaves
# here as soon as it has ended: later readers read the database. Only when the database could not
# take the replay (it was away) does the run stay here ``EVI360_EVENT_RETENTION`` seconds, so a
# client that reconnects still reads it.
RUNS: dict[str, StreamRun] = {}


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
