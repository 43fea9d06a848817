"""Graceful shutdown: running streams finish within the grace period, the rest end as
`interrupted` with a retryable error event; no new stream starts meanwhile; nothing is left
`streaming`. In-process (drain) and for real (SIGTERM to a daphne and to a uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import threading

import httpx
import pytest
from asgiref.sync import sync_to_async

from streaming.engine import generate as generation
from streaming.engine import shutdown
from streaming.engine.events import INTERRUPTED
from streaming.engine.runtime import RUNTIME
from streaming.models import Status, StreamSession
from tests.conftest import new_session, parse_sse
from tests.support.browser_models import set_script
from tests.support.live_server import scripted_live_server, sse_events


async def aenumerate(iterator):
    index = 0
    async for item in iterator:
        yield index, item
        index += 1


@pytest.fixture
def fresh_shutdown_state(monkeypatch):
    monkeypatch.setattr(RUNTIME, "draining", False)
    monkeypatch.setattr(RUNTIME, "interrupted", set())


async def _generating(user, scripted_model, before):
    """A session and its generation of "Til niet te zwaar.", whose last token waits for ``before()``."""
    scripted_model(["Til ", "niet ", "te zwaar."], before=before)
    session = await new_session(user)
    return session, generation.start(generation.StreamRequest(session=session))


@pytest.mark.django_db(transaction=True)
async def test_drain_interrupts_what_does_not_finish_in_time(
    small_kb, user, scripted_model, fresh_shutdown_state
):
    never = asyncio.Event()
    session, run = await _generating(user, scripted_model, never.wait)
    async with contextlib.aclosing(run.log.follow()) as events:
        async for index, _event in aenumerate(events):
            if index == 2:  # session and two tokens: the third token waits forever
                break

    assert await shutdown.drain(grace=0.05) == 1

    events = parse_sse(b"".join(run.log.events))
    assert [e[1] for e in events] == ["session", "token", "token", "error"]
    assert events[-1][2] == {
        "code": "interrupted",
        "message": INTERRUPTED.message,
        "retryable": True,
    }
    row = await sync_to_async(StreamSession.objects.get)(pk=session.pk)
    assert row.status == Status.INTERRUPTED and row.answer == "Til niet " and row.finished_at


@pytest.mark.django_db(transaction=True)
async def test_drain_lets_a_stream_finish_within_the_grace(
    small_kb, user, scripted_model, fresh_shutdown_state
):
    release = asyncio.Event()
    session, run = await _generating(user, scripted_model, release.wait)
    asyncio.get_running_loop().call_later(0.1, release.set)

    assert await shutdown.drain(grace=30) == 0

    assert parse_sse(b"".join(run.log.events))[-1][1] == "done"
    row = await sync_to_async(StreamSession.objects.get)(pk=session.pk)
    assert row.status == Status.COMPLETED


@pytest.mark.django_db(transaction=True)
async def test_no_stream_starts_while_draining(user, access_token, async_client, fresh_shutdown_state):
    RUNTIME.draining = True
    response = await async_client.post(
        "/api/v1/stream/query",
        {"query": "Hoe zwaar mag ik tillen?"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {access_token(user)}"},
    )
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "shutting_down"
    assert await StreamSession.objects.acount() == 0


def _stream_in_thread(server, token: str, events: list) -> threading.Thread:
    def read() -> None:
        with httpx.stream(
            "POST",
            f"{server.base}/api/v1/stream/query",
            json={"query": "Hoe zwaar mag ik tillen?"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as response:
            for event in sse_events(response):
                events.append(event)  # as each arrives: the test watches the list meanwhile

    thread = threading.Thread(target=read)
    thread.start()
    return thread


@pytest.mark.parametrize("asgi_server", ["daphne", "uvicorn"])
@pytest.mark.parametrize(("grace", "outcome"), [("0.3", "interrupted"), ("30", "completed")])
def test_sigterm_to_a_worker(tmp_path, grace, outcome, asgi_server):
    script = tmp_path / "script.json"
    # About 3 s of answer: longer than the short grace, well within the long one.
    set_script(script, deltas=["woord "] * 60, delay=0.05)
    with scripted_live_server(
        tmp_path, script, asgi_server=asgi_server, EVI360_SHUTDOWN_GRACE=grace
    ) as server:
        events: list = []
        reader = _stream_in_thread(server, server.token(), events)
        while sum(1 for kind, _ in events if kind == "token") < 3:
            assert reader.is_alive(), events
            threading.Event().wait(0.02)
        server.process.send_signal(signal.SIGTERM)
        reader.join(timeout=60)
        # uvicorn re-raises the signal once it has stopped, as servers should.
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    kinds = [kind for kind, _ in events]
    if outcome == "completed":
        assert kinds[-1] == "done" and kinds.count("token") == 60
    else:
        assert kinds[-1] == "error" and 3 <= kinds.count("token") < 60
        assert events[-1][1]["code"] == "interrupted" and events[-1][1]["retryable"] is True
    with sqlite3.connect(tmp_path / "live.sqlite3") as db:
        assert db.execute("SELECT status FROM streaming_streamsession").fetchall() == [(outcome,)]
