"""The HTTP response every event stream goes out in."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
