"""The HTTP response every event stream goes out in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from django.core.handlers import asgi
from django.http import StreamingHttpResponse

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


class EventStreamResponse(StreamingHttpResponse):
    """An SSE body that reaches the client event by event.

    Proxies and compression middleware must pass every event on at once, hence the headers. Our
    bodies yield bytes already, so Django's per-chunk ``make_bytes`` wrapper (two more async
    generator hops per event) is skipped when the server iterates it.
    """

    def __init__(self, body: AsyncIterator[bytes], content_type: str = SSE_CONTENT_TYPE) -> None:
        super().__init__(body, content_type=content_type)
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"

    def __aiter__(self) -> AsyncIterator[bytes]:  # type: ignore[override]
        return self._iterator if self.is_async else super().__aiter__()


def close_on_the_loop() -> None:
    """Close event streams in the event loop's thread, not in a thread made for the request.

    Django's ASGI handler ends every request with ``await sync_to_async(response.close)()``,
    which starts a thread for the request (``ThreadSensitiveContext``) just to close it: at one
    stream after another, the next request's time to first token was ~0.7 ms longer while that
    thread started and ran (measured in-process, docs/performance.md). An event stream's
    ``close()`` has nothing to block on: it closes no file, and the receivers of the
    ``request_finished`` it sends (``close_old_connections``, ``close_caches``,
    ``reset_urlconf``; tests/streaming/test_responses.py keeps the list) find no database
    connection in the loop's thread (the ORM refuses to run there; the streaming path's
    queries run in database threads) and no cache to close (local memory; Redis connections
    are pooled, not closed per request). Every other response is closed as Django does.
    """
    if getattr(asgi.sync_to_async, "closes_event_streams", False):
        return
    threaded = asgi.sync_to_async

    def sync_to_async(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Awaitable[Any]]:
        if isinstance(getattr(func, "__self__", None), EventStreamResponse) and func.__name__ == "close":

            async def close() -> None:
                func()

            return close
        return threaded(func, *args, **kwargs)

    sync_to_async.closes_event_streams = True  # type: ignore[attr-defined]
    asgi.sync_to_async = sync_to_async  # type: ignore[assignment]
