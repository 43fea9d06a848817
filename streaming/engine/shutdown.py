"""Graceful shutdown of a worker: on SIGTERM (or Ctrl+C) stop starting streams, let the running ones
finish for up to ``EVI360_SHUTDOWN_GRACE`` seconds, then end the rest as ``interrupted`` with a
retryable ``error`` event, and only then let the server stop.

Daphne's own shutdown cancels every open response at once, which would record running streams
as ``cancelled`` (as if their clients had left) and end them without a terminal event; uvicorn's
waits for open responses with no deadline of ours. So the signal handler here runs first and hands
the signal to the server's own handler when the streams are done. A second signal goes to the
server at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from streaming.engine.runtime import RUNTIME
from streaming.eventlog import RUNS

logger = logging.getLogger(__name__)


def _running() -> list[tuple[str, asyncio.Task[None]]]:
    return [(sid, run.task) for sid, run in RUNS.items() if run.task is not None and not run.task.done()]


async def drain(grace: float) -> int:
    """Refuse new streams, wait up to ``grace`` seconds for the running ones, then interrupt the
    rest. Returns how many were interrupted."""
    RUNTIME.draining = True
    running = _running()
    logger.warning("shutting down: %d stream(s) running, waiting up to %g s", len(running), grace)
    if running:
        await asyncio.wait([task for _, task in running], timeout=grace)
    left = _running()
    for session_id, task in left:
        RUNTIME.interrupted.add(session_id)
        task.cancel()
    if left:
        await asyncio.wait([task for _, task in left], timeout=10)
        # The responses still have to write the final events to their sockets.
        await asyncio.sleep(0.2)
    # Outcomes waiting for the database, and the Redis copies of the last events (readers on
    # other workers need the end of their stream): a last chance to write them.
    writing = [
        *RUNTIME.background,
        *(run.mirror for run in RUNS.values() if run.mirror and not run.mirror.done()),
    ]
    if writing:
        await asyncio.wait(writing, timeout=5)
    logger.warning("shutting down: %d stream(s) interrupted", len(left))
    return len(left)


def take_over_signals(grace: float) -> None:
    """Put the drain in front of the server's own SIGTERM/SIGINT handlers: the first signal drains,
    then hands the signal to the server (which stops with nothing left running); a second one goes
    to the server at once. Call once the server has installed its handlers (daphne and uvicorn both
    have by their first request); later calls, and calls off the main thread, do nothing."""
    if RUNTIME.signals_taken:
        return
    RUNTIME.signals_taken = True
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set signal handlers
    loop = asyncio.get_running_loop()
    handlers: dict[int, Any] = {}

    def on_signal(number: int, frame: Any) -> None:
        if RUNTIME.draining:  # a second signal: stop now
            handlers[number](number, frame)
            return

        def start() -> None:
            asyncio.ensure_future(drain(grace)).add_done_callback(lambda _: handlers[number](number, frame))

        loop.call_soon_threadsafe(start)

    for number in (signal.SIGTERM, signal.SIGINT):
        previous: Callable[..., Any] | int | None = signal.getsignal(number)
        handlers[number] = previous if callable(previous) else _default(number)
        signal.signal(number, on_signal)


def _default(number: int) -> Callable[[int, Any], None]:
    def stop(_: int, __: Any) -> None:
        signal.signal(number, signal.SIG_DFL)
        signal.raise_signal(number)

    return stop
