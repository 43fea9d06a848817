"""The web page's flow: POST /api/v1/stream/sessions/ creates a stream, GET .../<id>/events reads it."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from streaming import eventlog
from streaming.eventlog import redis_keys
from streaming.models import ClientKind, Status, StreamReplay, StreamSession
from tests.conftest import log_session, parse_sse, redis_test_url

pytestmark = pytest.mark.django_db(transaction=True)
CREATE = "/api/v1/stream/sessions/"


@pytest.fixture
async def web(user):
    """A logged-in browser: session cookie plus CSRF token."""
    client = AsyncClient(enforce_csrf_checks=True)
    await sync_to_async(client.force_login)(user)
    await client.get("/accounts/login/")
    client.csrf = client.cookies["csrftoken"].value
    return client


async def create(client, body) -> dict:
    response = await client.post(
        CREATE, body, content_type="application/json", headers={"X-CSRFToken": client.csrf}
    )
    assert response.status_code == 201, response.content
    return response.json()


async def read(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


async def ended(session_id: str) -> None:
    """Until the run has ended and, with Redis, its last copies are written (then it is forgotten)."""
    from streaming.eventlog import RUNS

    if (run := RUNS.get(session_id)) is not None:
        with contextlib.suppress(asyncio.CancelledError):  # stopped (DELETE)
            await run.task
        if run.mirror is not None:
            await run.mirror
        await asyncio.sleep(0)


async def test_create_then_read_the_events(small_kb, web, scripted_model):
    scripted_model(["Til ", "max 23 kg [1]", "."])
    created = await create(web, {"query": "Hoe zwaar mag ik tillen?", "language": "nl"})
    assert created["events_url"] == f"/api/v1/stream/sessions/{created['session_id']}/events"
    response = await web.get(created["events_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    events = parse_sse(await read(response))
    assert [e[1] for e in events] == ["session", "token", "citation", "token", "token", "done"]
    assert events[0][0] == 0
    session = await StreamSession.objects.aget(pk=created["session_id"])
    assert (session.status, session.client_kind) == (Status.COMPLETED, ClientKind.WEB)


async def test_create_needs_csrf(small_kb, user):
    client = AsyncClient(enforce_csrf_checks=True)
    await sync_to_async(client.force_login)(user)
    response = await client.post(CREATE, {"query": "tillen"}, content_type="application/json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed"


async def test_create_validates_like_the_stream_endpoint(web):
    response = await web.post(
        CREATE, {"query": " "}, content_type="application/json", headers={"X-CSRFToken": web.csrf}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_query"


async def test_last_event_id_resumes_after_that_event(small_kb, web, scripted_model):
    scripted_model(["een ", "twee ", "drie ", "vier"])
    created = await create(web, {"query": "tillen"})
    full = parse_sse(await read(await web.get(created["events_url"])))
    resumed = parse_sse(await read(await web.get(created["events_url"], headers={"Last-Event-ID": "2"})))
    assert resumed == full[3:]


async def test_another_users_or_unknown_session_is_404(small_kb, web, django_user_model, scripted_model):
    other = await django_user_model.objects.acreate_user("other", password="a-long-pass-123")
    theirs = await sync_to_async(log_session)(other, status="streaming")
    for url in (
        f"{CREATE}{theirs.id}/events",
        "/api/v1/stream/sessions/8d1f3f0e-64a4-4a4e-9d5e-1f5c3a1b2c3d/events",
    ):
        response = await web.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


async def test_last_event_id_as_a_query_parameter(small_kb, web, scripted_model):
    scripted_model(["een ", "twee ", "drie ", "vier"])
    created = await create(web, {"query": "tillen"})
    full = parse_sse(await read(await web.get(created["events_url"])))
    url = created["events_url"]
    assert parse_sse(await read(await web.get(url, {"last_event_id": "1"}))) == full[2:]
    # the header wins (EventSource sends it when it reconnects to a URL that has the parameter)
    header = await web.get(url, {"last_event_id": "1"}, headers={"Last-Event-ID": "3"})
    assert parse_sse(await read(header)) == full[4:]
    assert parse_sse(await read(await web.get(url, headers={"Last-Event-ID": ""}))) == full
    assert (await web.get(url, {"last_event_id": "99"})).status_code == 204  # past the end
    for bad in ("-1", "x", "1.5", "\u0661", "\u00b2"):  # Arabic-Indic one, superscript two
        response = await web.get(url, {"last_event_id": bad})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_last_event_id"


async def test_a_finished_session_replays_in_full_until_the_retention_ends(small_kb, web, scripted_model):
    from streaming.eventlog import RUNS

    scripted_model(["een ", "twee ", "drie"])
    created = await create(web, {"query": "tillen"})
    first = await read(await web.get(created["events_url"]))
    assert parse_sse(first)[-1][1] == "done"
    await ended(created["session_id"])
    # The process keeps nothing of a finished stream: its replay is in the database.
    assert created["session_id"] not in RUNS
    if eventlog.shared() is not None:  # any worker reads it from Redis first, the same bytes
        assert await read(await web.get(created["events_url"])) == first
        await eventlog.shared().client().delete(redis_keys.events_key(created["session_id"]))
    assert await read(await web.get(created["events_url"])) == first
    resumed = await read(await web.get(created["events_url"], headers={"Last-Event-ID": "1"}))
    assert parse_sse(resumed) == parse_sse(first)[2:]
    assert (await web.get(created["events_url"], {"last_event_id": "99"})).status_code == 204
    # the retention has passed
    await StreamReplay.objects.filter(session_id=created["session_id"]).aupdate(
        kept_until=timezone.now() - timedelta(seconds=1)
    )
    response = await web.get(created["events_url"])
    assert response.status_code == 410 and response.json()["error"]["code"] == "stream_ended"
    detail = f"{CREATE}{created['session_id']}"
    assert detail in response.json()["error"]["message"] and detail in response["Link"]
    assert (await web.get(detail)).json()["answer"] == "een twee drie"


async def test_without_retention_nothing_is_kept_for_replay(small_kb, web, scripted_model, settings):
    from streaming.eventlog import RUNS

    settings.EVI360_EVENT_RETENTION = 0
    scripted_model(["een ", "twee"])
    created = await create(web, {"query": "tillen"})
    await ended(created["session_id"])
    assert created["session_id"] not in RUNS and not await StreamReplay.objects.aexists()
    if eventlog.shared() is not None:
        await eventlog.shared().client().delete(redis_keys.events_key(created["session_id"]))
    assert (await web.get(created["events_url"])).status_code == 410


async def test_a_replay_the_database_could_not_take_is_kept_in_the_process(
    small_kb, web, scripted_model, monkeypatch
):
    """The database was away when the stream ended: its run stays here for the retention."""
    from django.db import OperationalError

    from streaming.engine.runtime import RUNTIME
    from streaming.eventlog import RUNS
    from streaming.store import writes

    def away(outcomes):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(writes, "record_outcomes", away)
    monkeypatch.setattr(RUNTIME, "retry_delays", ())
    scripted_model(["een ", "twee"])
    created = await create(web, {"query": "tillen"})
    first = await read(await web.get(created["events_url"]))
    assert parse_sse(first)[-1][1] == "done" and created["session_id"] in RUNS
    monkeypatch.undo()  # the database is back; it never got this replay
    assert not await StreamReplay.objects.aexists()
    assert await read(await web.get(created["events_url"])) == first
    after_the_end = {"Last-Event-ID": str(parse_sse(first)[-1][0])}
    assert (await web.get(created["events_url"], headers=after_the_end)).status_code == 204
    RUNS.pop(created["session_id"])


@pytest.mark.parametrize("event_log", ["memory", "redis"])
async def test_a_reconnect_after_the_terminal_event_is_204(
    small_kb, web, scripted_model, settings, event_log
):
    """EventSource reconnects after any response that ends, an empty 200 included; 204 stops it."""
    if event_log == "redis":
        if (url := redis_test_url(12)) is None:
            pytest.skip("no Redis at REDIS_URL's server or 127.0.0.1:6379")
        settings.REDIS_URL, settings.EVI360_EVENT_LOG = url, "redis"
    scripted_model(["een ", "twee"])
    created = await create(web, {"query": "tillen"})
    events_url, session_id = created["events_url"], created["session_id"]
    events = parse_sse(await read(await web.get(events_url)))
    assert events[-1][1] == "done"
    last, before_last = str(events[-1][0]), str(events[-2][0])

    async def reconnect(last_event_id: str):
        return await web.get(events_url, headers={"Last-Event-ID": last_event_id})

    # The run in this process, then (once it has ended) Redis or the database's replay.
    for _ in ("running here", "ended"):
        response = await reconnect(last)
        assert response.status_code == 204 and not response.has_header("Content-Type")
        assert response.content == b""
        # One event earlier still gets the terminal event.
        assert [e[1] for e in parse_sse(await read(await reconnect(before_last)))] == ["done"]
        await ended(session_id)
    if event_log == "redis":
        assert await eventlog.shared().has_events(session_id)  # the 204 came from Redis
        await eventlog.shared().client().delete(redis_keys.events_key(session_id))
        assert (await reconnect(last)).status_code == 204  # from the database's replay


async def test_a_session_that_is_not_running_is_410(web, user):
    session = await sync_to_async(log_session)(user, status="completed")
    response = await web.get(f"{CREATE}{session.id}/events")
    assert response.status_code == 410 and response.json()["error"]["code"] == "stream_ended"


async def test_a_created_session_waits_for_its_reader_and_a_query_stream_does_not(
    small_kb, web, scripted_model, settings, user, access_token
):
    from streaming.eventlog import RUNS

    settings.EVI360_RESUME_GRACE = 0.3
    gate = asyncio.Event()
    scripted_model(["een ", "twee ", "drie"], before=gate.wait)
    created = await create(web, {"query": "tillen"})
    # EventSource reconnects: the generation goes on for the grace once its reader is gone
    # (tests/streaming/eventlog/test_run.py: what the grace does; the browser test: a real reconnect).
    assert RUNS[created["session_id"]].grace == 0.3
    response = await web.post(
        "/api/v1/stream/query",
        {"query": "tillen"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {access_token(user)}"},
    )
    assert response.status_code == 200
    query_session = await StreamSession.objects.aget(client_kind=ClientKind.API)
    assert RUNS[str(query_session.id)].grace == 0  # its client holds it in this very response
    gate.set()


async def test_events_need_authentication_and_get(async_client, web, user):
    session = await sync_to_async(log_session)(user, status="streaming")
    assert (await async_client.get(f"{CREATE}{session.id}/events")).status_code == 401
    response = await web.post(f"{CREATE}{session.id}/events", headers={"X-CSRFToken": web.csrf})
    assert response.status_code == 405


async def test_a_stream_nobody_opens_is_cancelled(small_kb, web, scripted_model, settings):
    settings.EVI360_FIRST_READER_TIMEOUT = 0.2
    scripted_model(["begin ", "nooit"], before=asyncio.Event().wait)
    created = await create(web, {"query": "tillen"})
    for _ in range(300):  # up to 15 s on a busy machine; usually a fraction of a second
        session = await StreamSession.objects.aget(pk=created["session_id"])
        if session.status != Status.STREAMING:
            break
        await asyncio.sleep(0.05)
    assert session.status == Status.CANCELLED and session.error_message == "The client went away."


async def test_delete_stops_a_running_stream(small_kb, web, django_user_model, scripted_model):
    scripted_model(["begin ", "nooit"], before=asyncio.Event().wait)
    created = await create(web, {"query": "tillen"})
    url = f"{CREATE}{created['session_id']}"
    other = AsyncClient(enforce_csrf_checks=True)
    await sync_to_async(other.force_login)(
        await django_user_model.objects.acreate_user("other", password="a-long-pass-123")
    )
    await other.get("/accounts/login/")
    response = await other.delete(url, headers={"X-CSRFToken": other.cookies["csrftoken"].value})
    assert response.status_code == 404
    assert (await web.delete(url)).status_code == 403  # a session caller needs CSRF
    response = await web.delete(url, headers={"X-CSRFToken": web.csrf})
    assert response.status_code == 202 and response.json()["status"] == "cancelling"
    for _ in range(300):
        session = await StreamSession.objects.aget(pk=created["session_id"])
        if session.status != Status.STREAMING:
            break
        await asyncio.sleep(0.05)
    assert session.status == Status.CANCELLED and session.error_message == "Stopped by the user."


async def test_a_cancelled_streams_replay_ends_with_a_terminal_event(small_kb, web, scripted_model):
    """Without one, EventSource reconnects to a cancelled stream's replay until it expires."""
    scripted_model(["begin ", "nooit"], before=asyncio.Event().wait)
    created = await create(web, {"query": "tillen"})
    from streaming.eventlog import RUNS

    run = RUNS[created["session_id"]]
    for _ in range(500):  # until the first token is out
        if len(run.log.events) >= 2:
            break
        await asyncio.sleep(0.01)
    response = await web.delete(f"{CREATE}{created['session_id']}", headers={"X-CSRFToken": web.csrf})
    assert response.status_code == 202
    await ended(created["session_id"])
    url = created["events_url"]
    events = parse_sse(await read(await web.get(url)))
    assert [e[1] for e in events] == ["session", "token", "error"]
    assert events[-1][0] == 2 and events[-1][2]["code"] == "cancelled"
    # read from the database's replay as well (not this process, not Redis)
    if eventlog.shared() is not None:
        await eventlog.shared().client().delete(redis_keys.events_key(created["session_id"]))
    assert parse_sse(await read(await web.get(url))) == events
    assert parse_sse(await read(await web.get(url, headers={"Last-Event-ID": "0"}))) == events[1:]
