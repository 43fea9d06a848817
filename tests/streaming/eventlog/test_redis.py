"""The Redis Streams event log: what one worker generates, any worker reads — live, resumed, by
several readers, after the end — and cancels; Redis failing mid-stream ends or recovers, never
hangs. Uses Redis database 14 (REDIS_URL's server, or 127.0.0.1:6379) and its own redis-server for
the restart test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time

import pytest
import redis

from streaming import eventlog
from streaming.engine import generate as generation
from streaming.engine.wire import KEEP_ALIVE
from streaming.eventlog import redis as redis_eventlog
from streaming.eventlog import redis_keys
from streaming.models import Status, StreamSession
from tests.conftest import new_session, parse_sse, redis_test_url
from tests.support.live_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)
TEST_DB = redis_test_url(14)
if TEST_DB is None:
    pytest.skip("no Redis at REDIS_URL's server or 127.0.0.1:6379", allow_module_level=True)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_log(settings):
    settings.REDIS_URL = TEST_DB
    settings.EVI360_EVENT_LOG = "redis"
    redis.Redis.from_url(TEST_DB).flushdb()
    yield
    redis.Redis.from_url(TEST_DB).flushdb()


async def remote(session_id: str, start: int = 0, keep_alive: float = 1.0) -> bytes:
    """Everything a reader on another worker gets, from event ``start`` on."""
    async with asyncio.timeout(30):
        return b"".join(
            [chunk async for chunk in eventlog.shared().read(session_id, start, keep_alive=keep_alive)]
        )


def text(events) -> str:
    return "".join(e[2]["text"] for e in events if e[1] == "token")


async def generated(session_id: str, run) -> bytes:
    await run.task
    await run.mirror
    return b"".join(run.log.events)


WORDS = [f"woord{i} " for i in range(30)]


async def test_another_worker_reads_what_this_one_generates(small_kb, user, scripted_model, redis_log):
    scripted_model(WORDS)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session))
    live = await remote(str(session.id))  # started while the answer is being written
    local = await generated(str(session.id), run)
    assert live == local
    events = parse_sse(live)
    assert [e[0] for e in events] == list(range(len(events)))
    assert events[-1][1] == "done" and text(events) == "".join(WORDS)
    assert await remote(str(session.id), start=5) == b"".join(run.log.events[5:])  # after the end
    # Nothing is left after the terminal event (the events endpoint answers 204 then).
    assert await eventlog.shared().ended_before(str(session.id), len(events))
    assert not await eventlog.shared().ended_before(str(session.id), len(events) - 1)


async def test_ten_reconnects_lose_and_repeat_nothing(small_kb, user, scripted_model, redis_log):
    gate = asyncio.Event()
    scripted_model(WORDS, before=gate.wait)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session))
    received, start, reconnects = [], 0, 0
    while not received or received[-1][1] != "done":
        if reconnects == 5:
            gate.set()  # half of them while the answer is still being written, half after
        async with contextlib.aclosing(
            eventlog.shared().read(str(session.id), start, keep_alive=1)
        ) as reader:
            chunk = KEEP_ALIVE
            while chunk == KEEP_ALIVE:
                chunk = await anext(reader)
        # The connection drops after the first three events of what arrived.
        events = parse_sse(chunk)[:3]
        received += events
        start = events[-1][0] + 1  # what EventSource's Last-Event-ID asks for
        reconnects += 1
    assert reconnects >= 10
    assert received == parse_sse(await generated(str(session.id), run))
    assert text(received) == "".join(WORDS)


async def test_two_readers_at_once_and_one_after(small_kb, user, scripted_model, redis_log):
    scripted_model(WORDS)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session))
    first, second = await asyncio.gather(remote(str(session.id)), remote(str(session.id)))
    local = await generated(str(session.id), run)
    assert first == second == local == await remote(str(session.id))


async def test_delete_on_another_worker_cancels_the_generation(small_kb, user, scripted_model, redis_log):
    scripted_model(["begin ", "nooit"], before=asyncio.Event().wait)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session))
    async with asyncio.timeout(10):
        for _ in range(500):
            if await eventlog.shared().client().exists(redis_keys.live_key(str(session.id))):
                break
            await asyncio.sleep(0.02)
        for _ in range(500):  # until the first token is out
            if len(run.log.events) >= 2:
                break
            await asyncio.sleep(0.01)
        assert await eventlog.shared().request_cancel(str(session.id))
        with contextlib.suppress(asyncio.CancelledError):
            await run.task
        await run.mirror
    stopped = await StreamSession.objects.aget(pk=session.pk)
    assert stopped.status == Status.CANCELLED and stopped.error_message == "Stopped by the user."
    assert not await eventlog.shared().request_cancel(str(session.id))  # nothing runs any more
    # the readers elsewhere see the terminal event too: EventSource must stop, not reconnect
    events = parse_sse(await remote(str(session.id)))
    assert [e[1] for e in events] == ["session", "token", "error"] and events[-1][2]["code"] == "cancelled"
    assert parse_sse(await remote(str(session.id), start=1)) == events[1:]


async def test_a_reader_on_another_worker_keeps_the_generation_going(
    small_kb, user, scripted_model, redis_log
):
    gate = asyncio.Event()
    scripted_model(["een ", "twee"], before=gate.wait)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session), resume_grace=0.2)
    reader = asyncio.create_task(remote(str(session.id), keep_alive=0.1))
    await asyncio.sleep(0.1)
    run.expect_reader(0.2)  # no reader on this worker: it would cancel, but one reads elsewhere
    await asyncio.sleep(1)
    assert not run.task.done()
    reader.cancel()  # that reader goes away too: now the generation stops
    async with asyncio.timeout(10):
        with contextlib.suppress(asyncio.CancelledError):
            await run.task
    assert (await StreamSession.objects.aget(pk=session.pk)).status == Status.CANCELLED


async def test_a_stream_nobody_writes_any_more_ends_with_a_retryable_error(redis_log):
    # Its worker died (SIGKILL) after two events: no end entry, no live key.
    client = eventlog.shared().client()
    await client.xadd(redis_keys.events_key("dead"), {"d": b"id: 0\nevent: token\ndata: {}\n\n"}, id="1-0")
    body = await remote("dead", keep_alive=0.1)
    assert body.startswith(b"id: 0\nevent: token")
    assert body.endswith(redis_eventlog.encode_lost())
    assert b'"code":"stream_unavailable"' in body and b'"retryable":true' in body


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture
def own_redis(settings, tmp_path):
    """A redis-server of this test's own, which it may kill and restart."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("no redis-server binary")
    port = free_port()
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(tmp_path)]

    class Server:
        process: subprocess.Popen

        def start(self) -> None:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while not _answers(f"redis://127.0.0.1:{port}/0"):
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

        def kill(self) -> None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    server = Server()
    server.start()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    settings.EVI360_EVENT_LOG = "redis"
    yield server
    server.kill()


async def test_redis_restarted_mid_stream(small_kb, user, scripted_model, own_redis):
    async def slowly():
        await asyncio.sleep(0.02)

    scripted_model(WORDS, before=slowly)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session))
    reader = asyncio.create_task(remote(str(session.id), keep_alive=0.5))
    await run.log.wait(7)  # eight events written
    own_redis.kill()  # everything in it is lost
    await asyncio.sleep(0.3)
    await asyncio.to_thread(own_redis.start)
    received = parse_sse(await reader)
    local = parse_sse(await generated(str(session.id), run))
    # Recovered: the mirror rewrote the stream with the same ids, the reader resumed after the
    # last event it had: the whole answer, nothing twice.
    assert received == local
    assert (await StreamSession.objects.aget(pk=session.pk)).status == Status.COMPLETED


async def test_redis_gone_for_good_ends_the_reader_with_a_retryable_error(
    small_kb, user, scripted_model, own_redis, monkeypatch
):
    monkeypatch.setattr(redis_eventlog, "READER_PATIENCE", 1.0)
    scripted_model(WORDS, before=asyncio.Event().wait)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session))
    reader = asyncio.create_task(remote(str(session.id), keep_alive=0.5))
    await run.log.wait(2)
    own_redis.kill()
    body = await reader
    assert body.endswith(redis_eventlog.encode_lost())
    run.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run.task
    # The answer's own outcome does not depend on Redis: it is in the database.
    assert (await StreamSession.objects.aget(pk=session.pk)).status == Status.CANCELLED
    run.mirror.cancel()


def test_metrics_count_the_streams_running_on_every_worker(redis_log, client, settings):
    settings.EVI360_METRICS_TOKEN = "scrape"
    server = redis.Redis.from_url(TEST_DB)
    for session_id in ("a", "b", "c"):  # running here or on other workers, other hosts
        server.set(f"evi360:live:{session_id}", "host:1", ex=30)
    body = client.get("/metrics", headers={"Authorization": "Bearer scrape"}).content.decode()
    assert "evi360_streams_active_cluster 3" in body.splitlines()


async def test_a_process_starts_its_background_work_once(redis_log):
    log = eventlog.shared()
    names = ("evi360-cancel-listener", "evi360-orphan-sweeper")

    def running() -> list[asyncio.Task]:
        return [t for t in asyncio.all_tasks() if t.get_name() in names and not t.done()]

    log.ensure_started()
    started = running()
    log.ensure_started()  # every request calls it
    assert sorted(t.get_name() for t in started) == sorted(names) and set(running()) == set(started)
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)
    log.ensure_started()  # a finished one is started again
    again = running()
    assert len(again) == 2 and not set(again) & set(started)
    for task in again:
        task.cancel()
    await asyncio.gather(*again, return_exceptions=True)
