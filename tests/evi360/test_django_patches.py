"""evi360/django_patches.py against the pinned Django: each patch does what it says, and each
refuses to install when the internals it relies on are gone."""

from __future__ import annotations

import asyncio
import json
import threading
import weakref

import django
import pytest
from asgiref import sync
from django.core.asgi import get_asgi_application
from django.core.handlers import asgi
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, reset_queries
from django.utils.deprecation import MiddlewareMixin

from evi360 import django_patches
from evi360.django_patches import UnsupportedDjango, close_on_the_loop


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


def _names(signal) -> set[str]:
    receivers = [r() if isinstance(r, weakref.ReferenceType) else r for _, r, _ in signal.receivers]
    return {receiver.__qualname__ for receiver in receivers}


@pytest.fixture
def request_started_receivers():
    yield
    # What django.db connects at import, back for the other tests.
    request_started.connect(reset_queries)
    request_started.connect(close_old_connections)


def test_request_started_keeps_no_sync_receiver(request_started_receivers):
    assert {"close_old_connections", "reset_queries"} <= _names(request_started)
    django_patches.skip_request_started_hop()
    assert not {"close_old_connections", "reset_queries"} & _names(request_started)


def test_the_pinned_django_passes_every_check(request_started_receivers):
    django_patches.apply()
    django_patches.apply()  # again: nothing changes
    assert asgi.sync_to_async.closes_event_streams


def test_another_django_series_is_refused(monkeypatch):
    monkeypatch.setattr(django, "VERSION", (5, 3, 0, "final", 0))
    with pytest.raises(UnsupportedDjango, match=r"written for Django 5\.2"):
        django_patches.check_version()


def test_a_handler_that_no_longer_closes_through_sync_to_async_is_refused(monkeypatch):
    monkeypatch.setattr(asgi, "sync_to_async", sync.sync_to_async)  # as if not patched yet

    async def handle(self, scope, receive, send):
        return None

    monkeypatch.setattr(asgi.ASGIHandler, "handle", handle)
    with pytest.raises(UnsupportedDjango, match=r"ASGIHandler\.handle"):
        close_on_the_loop()
    assert asgi.sync_to_async is sync.sync_to_async


def test_middleware_that_no_longer_dispatches_to_acall_is_refused(monkeypatch):
    def call(self, request):
        return self.get_response(request)

    monkeypatch.setattr(MiddlewareMixin, "__call__", call)
    with pytest.raises(UnsupportedDjango, match="__acall__"):
        django_patches.check_inline_middleware()
