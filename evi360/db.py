"""The one sync/async boundary for database work on the streaming path.

``run_db(fn, ...)`` runs ``fn`` on a small, fixed pool of database threads (``EVI360_DB_THREADS``,
default 4). Each pool thread keeps its own connection between calls, so an open stream holds no
connection while it waits on the model, and the process never holds more than
``EVI360_DB_THREADS`` connections however many streams are open: with PostgreSQL's
``max_connections`` far below the number of open streams, streams still work. (Django's own
``sync_to_async`` keeps the connection of the request's thread open until the response ends, which
for a stream is a minute later.)

A call that fails closes its thread's connections, so the next call starts on a fresh one
(a database restart or a broken connection costs one failed call, not a broken pool).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, ParamSpec, TypeVar

from django.conf import settings
from django.db import connections

P = ParamSpec("P")
T = TypeVar("T")
Item = TypeVar("Item")


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.EVI360_DB_THREADS, thread_name_prefix="evi360-db")


def _call(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    try:
        return fn(*args, **kwargs)
    except Exception:
        # A failed call may leave a connection in a bad state: start the next one afresh.
        connections.close_all()
        raise


async def run_db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), _call, fn, args, kwargs)


class Batch(Generic[Item, T]):
    """Group commit: ``fn(items)`` does the work of many callers in one trip to a database thread
    (and the caller's one transaction), returning a result or an exception per item in order.

    One call is in flight at a time; whatever is submitted meanwhile goes into the next. A lone
    caller goes at once (no waiting to fill a batch); in a burst, a hundred stream starts are a
    few transactions instead of a hundred, each of which SQLite would serialise anyway. If
    ``fn`` raises for a batch of several, each item is tried on its own, so one bad item does not
    fail the others. ``abandoned(item, result)`` is told of results whose caller went away.
    ``runner``: an async function doing the work on the event loop's side instead of ``fn`` in a
    database thread (e.g. a model call); a failed batch then fails each of its items, with no
    retry one by one. ``settles_early``: ``fn(items, settle)`` may hand an item's result to its
    caller before the batch ends with ``settle(index, result)`` (from its thread); the entries
    of settled items in what it returns are ignored, and a failure afterwards retries only the
    items not settled yet.
    """

    def __init__(
        self,
        fn: Callable[..., Sequence[T | Exception]] | None = None,
        abandoned: Callable[[Item, T], None] | None = None,
        *,
        runner: Callable[[Sequence[Item]], Awaitable[Sequence[T | Exception]]] | None = None,
        settles_early: bool = False,
    ) -> None:
        if (fn is None) == (runner is None):
            raise TypeError("a Batch takes either fn or runner")
        self._fn = fn
        self._settles_early = settles_early
        self._runner = runner
        self._abandoned = abandoned
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[Item, asyncio.Future[T]]] = []
        self._running = False

    async def submit(self, item: Item) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests): nothing of the old one carries over
            self._loop, self._pending, self._running = loop, [], False
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((item, future))
        if not self._running:
            self._launch(loop)
        return await future

    def _launch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        self._running = True
        task = loop.create_task(self._run(batch))
        # A done callback, not a `finally` in _run: a task cancelled before its first step (the
        # loop shutting down) never runs its body, and its callers would wait forever.
        task.add_done_callback(functools.partial(self._finished, loop, batch))

    def _finished(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Item, asyncio.Future[T]]],
        task: asyncio.Task[None],
    ) -> None:
        failure = None if task.cancelled() else task.exception()
        for _, future in batch:
            if not future.done():
                if failure is None:
                    future.cancel()
                else:
                    future.set_exception(failure)
        self._running = False
        if self._pending and self._loop is loop and not loop.is_closed():
            self._launch(loop)

    async def _run(self, batch: list[tuple[Item, asyncio.Future[T]]]) -> None:
        items = [item for item, _ in batch]
        loop = asyncio.get_running_loop()
        settled: set[int] = set()

        def settle(index: int, result: T | Exception) -> None:
            settled.add(index)
            loop.call_soon_threadsafe(self._deliver, *batch[index], result)

        try:
            if self._runner is not None:
                results = list(await self._runner(items))
            else:
                results = list(await run_db(self._fn, items, *self._extra(settle)))  # type: ignore[arg-type]
        except Exception as exc:
            if len(items) == 1 or self._runner is not None:
                results = [exc] * len(items)
            else:
                results = [
                    exc if index in settled else await self._alone(item) for index, item in enumerate(items)
                ]
        for index, ((item, future), result) in enumerate(zip(batch, results, strict=True)):
            if index not in settled:
                self._deliver(item, future, result)

    def _extra(self, settle: Callable[[int, T | Exception], None]) -> tuple[Callable[..., None], ...]:
        # fn itself goes to run_db (not a wrapper), so its name is what the trip is known by.
        return (settle,) if self._settles_early else ()

    def _deliver(self, item: Item, future: asyncio.Future[T], result: T | Exception) -> None:
        if future.done():  # the caller was cancelled meanwhile
            if self._abandoned is not None and not isinstance(result, Exception):
                self._abandoned(item, result)
        elif isinstance(result, Exception):
            future.set_exception(result)
        else:
            future.set_result(result)

    async def _alone(self, item: Item) -> T | Exception:
        settled: list[T | Exception] = []

        def settle(_: int, result: T | Exception) -> None:
            settled.append(result)

        try:
            returned = (await run_db(self._fn, [item], *self._extra(settle)))[0]  # type: ignore[arg-type]
        except Exception as exc:
            returned = exc
        return settled[0] if settled else returned


def close_pool() -> None:
    """Close every pool thread's connections and the pool (tests, shutdown)."""
    if _executor.cache_info().currsize == 0:
        return
    executor = _executor()
    size = executor._max_workers
    barrier = threading.Barrier(size)

    def close_in_this_thread() -> None:
        barrier.wait(5)  # one call per thread: each waits until all threads hold one
        connections.close_all()

    for future in [executor.submit(close_in_this_thread) for _ in range(size)]:
        future.result()
    executor.shutdown()
    _executor.cache_clear()
