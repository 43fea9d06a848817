"""The event-stream response: its headers, and closing it in the event loop's thread."""

from __future__ import annotations

import asyncio
import json
import threading
import weakref

import pytest
from django.core.asgi import get_asgi_application
from django.core.signals import request_finished

from streaming.api.responses import EventStreamResponse, close_on_the_loop


async def _serve(handler, path: str, *, body: bytes = b"", headers=()) -> bytes:
    """One request through Django's ASGI handler, as a server sends it; the body it answers."""
    sent = asyncio.Event()
    chunks: list[bytes] = []

    async def receive():
        if not sent.is_set():
            sent.set()
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays

    async def send(message):
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST" if body else "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await handler(scope, receive, send)
    return b"".join(chunks)


def test_the_headers_keep_proxies_from_buffering():
    async def body():
        yield b"data: x\n\n"

    response = EventStreamResponse(body())
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"


@pytest.mark.django_db(transaction=True)
async def test_an_event_stream_is_closed_in_the_loops_thread_other_responses_as_django_does(
    small_kb, user, access_token, scripted_model
):
    scripted_model(["Til ", "max 23 kg [1]", "."])
    close_on_the_loop()
    close_on_the_loop()  # installing twice changes nothing
    handler = get_asgi_application()
    closed_in: list[threading.Thread] = []

    def record(**kwargs):
        closed_in.append(threading.current_thread())

    request_finished.connect(record)
    try:
        health = await _serve(handler, "/healthz")
        stream = await _serve(
            handler,
            "/api/v1/stream/query",
            body=json.dumps({"query": "Hoe zwaar mag ik tillen?"}).encode(),
            headers=[
                (b"authorization", f"Bearer {access_token(user)}".encode()),
                (b"content-type", b"application/json"),
            ],
        )
    finally:
        request_finished.disconnect(record)
    assert b"event: done" in stream and health
    loop_thread = threading.current_thread()
    assert closed_in[0] is not loop_thread  # the health check: in the thread Django made for it
    assert closed_in[1] is loop_thread  # the event stream: no thread made to close it


def test_request_finished_has_only_receivers_known_to_be_safe_in_the_loop():
    """close_on_the_loop() runs these in the event loop's thread: a new receiver (one that may
    block, or reach the database) must be checked there before it is added to this list."""
    receivers = [r() if isinstance(r, weakref.ReferenceType) else r for _, r, _ in request_finished.receivers]
    names = {receiver.__qualname__ for receiver in receivers}
    assert names == {"close_old_connections", "close_caches", "reset_urlconf"}
