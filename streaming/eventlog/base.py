"""What a shared (cross-worker) event log backend offers: the worker that generates a session
``attach``es its run; any worker reads the session's events, learns whether any are left, and
asks the generating worker to stop. Without one (``EVI360_EVENT_LOG=memory``) only the process
that generates a session serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from streaming.eventlog.run import StreamRun


class SharedEventLog(Protocol):
    def ensure_started(self) -> None:
        """Start this process's background work (on its event loop; a no-op once running)."""

    def attach(self, run: StreamRun) -> None:
        """Make a run that was just started readable, and stoppable, from every worker."""

    async def has_events(self, session_id: str) -> bool:
        """Whether the log holds events of the session (False when it cannot say)."""

    async def ended_before(self, session_id: str, start: int) -> bool:
        """Whether the session has ended with nothing to read from event ``start`` on."""

    def read(self, session_id: str, start: int = 0, *, keep_alive: float) -> AsyncIterator[bytes]:
        """The session's SSE events from ``start`` on as they come, until its end; a keep-alive
        comment after ``keep_alive`` seconds without one."""

    async def request_cancel(self, session_id: str) -> bool:
        """Ask whichever worker generates the session to stop. False if nobody generates it."""

    async def remote_readers(self, session_id: str) -> int:
        """Readers of the session on other workers."""
