"""Where a session's events are read from (this process, the shared log, the database's replay,
nowhere) and how it is stopped, whichever worker runs it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from streaming.engine.events import TokenEvent
from streaming.eventlog import RUNS, StreamRun, lookup
from streaming.models import StreamReplay
from streaming.store import replay
from tests.conftest import log_session

EVENTS = [b"id: 0\nevent: token\ndata: {}\n\n", b"id: 1\nevent: token\ndata: {}\n\n"]


@pytest.fixture(autouse=True)
def in_memory(settings):
    settings.EVI360_EVENT_LOG = "memory"
    settings.EVI360_SSE_RETRY_MS = 1000


class FakeSharedLog:
    """Another worker's run, as the shared log tells of it."""

    def __init__(self, events: list[bytes] | None = None, *, running: bool = False) -> None:
        self.events, self.running, self.cancelled = events, running, []

    async def has_events(self, session_id: str) -> bool:
        return self.events is not None

    async def ended_before(self, session_id: str, start: int) -> bool:
        return not self.running and start >= len(self.events or [])

    async def read(self, session_id: str, start: int = 0, *, keep_alive: float):
        for event in (self.events or [])[start:]:
            yield event

    async def request_cancel(self, session_id: str) -> bool:
        self.cancelled.append(session_id)
        return self.running


@pytest.fixture
def shared_log(monkeypatch):
    def install(log: FakeSharedLog) -> FakeSharedLog:
        monkeypatch.setattr(lookup, "shared", lambda: log)
        return log

    return install


@pytest.fixture
def run_here():
    runs: list[str] = []

    def add(session_id: str, *, closed: bool = True) -> StreamRun:
        run = RUNS[session_id] = StreamRun(session_id)
        runs.append(session_id)
        for data in EVENTS:
            run.log.append(data, TokenEvent(""))
        if closed:
            run.log.close()
        return run

    yield add
    for session_id in runs:
        RUNS.pop(session_id, None)


async def body(found: lookup.Found) -> bytes:
    assert isinstance(found, lookup.Body), found
    return b"".join([chunk async for chunk in found.chunks])


async def test_a_run_of_this_process_is_read_from_its_log(run_here):
    run_here("here", closed=False)
    found = await lookup.events_of("here", 1)
    RUNS["here"].log.close()
    assert await body(found) == b"retry: 1000\n\n" + EVENTS[1]


async def test_past_the_end_of_a_finished_run_of_this_process_is_no_more_events(run_here):
    run_here("here")
    assert await body(await lookup.events_of("here", 1)) == b"retry: 1000\n\n" + EVENTS[1]
    assert isinstance(await lookup.events_of("here", 2), lookup.NoMoreEvents)


async def test_this_process_s_run_comes_before_the_shared_log(run_here, shared_log):
    run_here("here")
    shared_log(FakeSharedLog([b"elsewhere"]))
    assert await body(await lookup.events_of("here", 0)) == b"retry: 1000\n\n" + b"".join(EVENTS)


async def test_another_workers_run_is_read_from_the_shared_log(shared_log):
    shared_log(FakeSharedLog(EVENTS, running=True))
    assert await body(await lookup.events_of("elsewhere", 1)) == b"retry: 1000\n\n" + EVENTS[1]
    shared_log(FakeSharedLog(EVENTS))  # ended there
    assert isinstance(await lookup.events_of("elsewhere", 2), lookup.NoMoreEvents)


async def _replayed(user, *, kept_for: timedelta):
    session = await sync_to_async(log_session)(user)
    await StreamReplay.objects.acreate(
        session=session, events=replay.pack(EVENTS), kept_until=timezone.now() + kept_for
    )
    return str(session.id)


@pytest.mark.django_db(transaction=True)
async def test_a_finished_session_is_read_from_its_replay(user, shared_log):
    shared_log(FakeSharedLog())  # the shared log has nothing of it (expired there)
    session_id = await _replayed(user, kept_for=timedelta(minutes=5))
    assert await body(await lookup.events_of(session_id, 0)) == b"retry: 1000\n\n" + b"".join(EVENTS)
    assert await body(await lookup.events_of(session_id, 1)) == b"retry: 1000\n\n" + EVENTS[1]
    assert isinstance(await lookup.events_of(session_id, 2), lookup.NoMoreEvents)


@pytest.mark.django_db(transaction=True)
async def test_a_session_whose_events_nobody_keeps_is_gone(user):
    expired = await _replayed(user, kept_for=timedelta(seconds=-1))
    never_kept = str((await sync_to_async(log_session)(user)).id)
    for session_id in (expired, never_kept):
        assert isinstance(await lookup.events_of(session_id, 0), lookup.Gone)


async def test_stop_cancels_a_run_of_this_process(run_here, shared_log):
    log = shared_log(FakeSharedLog(running=True))
    run = run_here("here", closed=False)
    run.task = asyncio.create_task(asyncio.sleep(10))
    assert await lookup.stop("here")
    await asyncio.gather(run.task, return_exceptions=True)
    assert run.task.cancelled() and log.cancelled == []


async def test_a_finished_run_of_this_process_is_not_stopped_elsewhere(run_here, shared_log):
    log = shared_log(FakeSharedLog(running=True))
    run = run_here("here")
    assert not await lookup.stop("here")  # no task
    run.task = asyncio.create_task(asyncio.sleep(0))
    await run.task
    assert not await lookup.stop("here")
    assert log.cancelled == []


async def test_stop_asks_the_shared_log_for_another_workers_run(shared_log):
    assert not await lookup.stop("elsewhere")  # no shared log: nobody else could run it
    log = shared_log(FakeSharedLog(running=True))
    assert await lookup.stop("elsewhere") and log.cancelled == ["elsewhere"]
    shared_log(FakeSharedLog(running=False))
    assert not await lookup.stop("elsewhere")
