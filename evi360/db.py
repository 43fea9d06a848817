"""The one sync/async boundary for database work on the streaming path.

``run_db(fn, ...)`` runs ``fn`` in a worker thread and closes that thread's database connections
before returning, so an open stream never holds a connection while it waits on the model: with
PostgreSQL's ``max_connections`` far below the number of open streams, streams still work.
(Django's own ``sync_to_async`` keeps the connection of the request's thread open until the
response ends, which for a stream is a minute later.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
T = TypeVar("T")


def _call_and_close(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    finally:
        connections.close_all()


async def run_db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await sync_to_async(_call_and_close, thread_sensitive=False)(fn, *args, **kwargs)
