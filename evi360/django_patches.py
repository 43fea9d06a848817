"""Every change made to Django's own code at run time, in one place (``apply()``, from
evi360/asgi.py). Each first checks that the Django internals it relies on are still there, so an
upgrade that moves them stops the server with the reason instead of silently undoing the patch.
(evi360/middleware.py replaces no Django code, but overrides ``MiddlewareMixin.__acall__`` in
subclasses: its reliance is checked here too.) The figures behind each are in docs/performance.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import django
from django.core.handlers import asgi
from django.core.signals import request_started
from django.db import close_old_connections, reset_queries
from django.utils.deprecation import MiddlewareMixin

from streaming.api.responses import EventStreamResponse

# The Django series these patches were written against and are tested with.
DJANGO_SERIES = (5, 2)


class UnsupportedDjango(RuntimeError):
    """A patch no longer fits the installed Django."""


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise UnsupportedDjango(
            f"evi360/django_patches.py: {what} (Django {django.get_version()}); check the patch "
            "against this version before starting"
        )


def check_version() -> None:
    _require(django.VERSION[:2] == DJANGO_SERIES, f"written for Django {'.'.join(map(str, DJANGO_SERIES))}")


def skip_request_started_hop() -> None:
    """Under an ASGI server: one thread hop less per request.

    Django sends ``request_started`` to its sync receivers (``close_old_connections``,
    ``reset_queries``) through ``sync_to_async``, in the thread it makes for each request. That
    thread is new then and holds no connection, so both have nothing to do. (``request_finished``
    is sent from ``response.close()`` in that same thread and still closes what a sync view
    opened there; database work on the streaming path has its own threads, see ``run_db``.)
    """
    _require(
        callable(close_old_connections) and callable(reset_queries),
        "django.db no longer has close_old_connections and reset_queries",
    )
    request_started.disconnect(close_old_connections)
    request_started.disconnect(reset_queries)


def close_on_the_loop() -> None:
    """Close event streams in the event loop's thread, not in a thread made for the request.

    Django's ASGI handler ends every request with ``await sync_to_async(response.close)()``,
    which starts a thread for the request (``ThreadSensitiveContext``) just to close it, and the
    next request's time to first token pays for that thread (docs/performance.md). An event
    stream's ``close()`` has nothing to block on: it closes no file, and the receivers of the
    ``request_finished`` it sends (``close_old_connections``, ``close_caches``, ``reset_urlconf``;
    tests/evi360/test_django_patches.py keeps the list) find no database connection in the loop's
    thread (the streaming path's queries run in database threads) and no cache to close (local
    memory; Redis connections are pooled). Every other response is closed as Django does.
    """
    if getattr(asgi.sync_to_async, "closes_event_streams", False):
        return
    _require(
        callable(getattr(asgi, "sync_to_async", None))
        and "sync_to_async(response.close)" in inspect.getsource(asgi.ASGIHandler.handle),
        "ASGIHandler.handle no longer closes responses with django.core.handlers.asgi.sync_to_async",
    )
    threaded = asgi.sync_to_async

    def sync_to_async(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Awaitable[Any]]:
        if isinstance(getattr(func, "__self__", None), EventStreamResponse) and func.__name__ == "close":

            async def close() -> None:
                func()

            return close
        return threaded(func, *args, **kwargs)

    sync_to_async.closes_event_streams = True  # type: ignore[attr-defined]
    asgi.sync_to_async = sync_to_async  # type: ignore[assignment]


def check_inline_middleware() -> None:
    """evi360/middleware.py's ``InlineMixin.__acall__`` stands in for ``MiddlewareMixin``'s, which
    Django's ``__call__`` must still dispatch to for an async chain."""
    _require(
        hasattr(MiddlewareMixin, "__acall__") and "__acall__" in inspect.getsource(MiddlewareMixin.__call__),
        "MiddlewareMixin.__call__ no longer dispatches to __acall__",
    )


def apply() -> None:
    """Check the Django version and apply every patch (again: a no-op)."""
    check_version()
    check_inline_middleware()
    skip_request_started_hop()
    close_on_the_loop()
