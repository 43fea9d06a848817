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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.core.signals import request_started
from django.db import close_old_connections, connections, reset_queries

P = ParamSpec("P")
T = TypeVar("T")


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


def skip_request_started_hop() -> None:
    """Under an ASGI server: one thread hop less per request.

    Django sends ``request_started`` to its sync receivers (``close_old_connections``,
    ``reset_queries``) through ``sync_to_async``, in the thread it makes for each request. That
    thread is new then and holds no connection, so both have nothing to do. (``request_finished``
    is sent from ``response.close()`` in that same thread and still closes what a sync view
    opened there; database work on the streaming path has its own threads, see ``run_db``.)
    """
    request_started.disconnect(close_old_connections)
    request_started.disconnect(reset_queries)
