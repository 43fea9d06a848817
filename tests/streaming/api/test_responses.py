"""The event-stream response: its headers (closing it in the loop's thread: tests/evi360/test_django_patches.py)."""

from __future__ import annotations

from streaming.api.responses import EventStreamResponse


def test_the_headers_keep_proxies_from_buffering():
    async def body():
        yield b"data: x\n\n"

    response = EventStreamResponse(body())
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
