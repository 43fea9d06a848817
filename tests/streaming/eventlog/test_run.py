"""A run of this process: the grace after its last reader, and how a finished one is forgotten."""

import asyncio

import pytest

from streaming.engine.events import TokenEvent
from streaming.eventlog import EventLog, StreamRun, stream_response
from streaming.eventlog import run as runs


@pytest.fixture
def listed():
    """Lists a run in RUNS for the test."""
    added: list[StreamRun] = []

    def add(run: StreamRun) -> None:
        runs.RUNS[run.session_id] = run
        added.append(run)

    yield add
    for run in added:
        runs.RUNS.pop(run.session_id, None)


async def _read(log: EventLog, start: int = 0) -> bytes:
    return b"".join([chunk async for chunk in log.read(start)])


async def test_the_last_reader_leaving_cancels_the_generation_after_the_grace():
    async def generation():
        await asyncio.sleep(10)

    for grace in (0, 0.05):
        run = StreamRun("s", grace=grace)
        run.task = asyncio.create_task(generation())
        body = stream_response(run, preamble=b"retry: 1\n\n", keep_alive=10)
        assert await anext(body) == b"retry: 1\n\n"
        await body.aclose()  # what Django does when the client disconnects
        await asyncio.sleep(grace + 0.05)
        assert run.task.cancelled()


async def test_a_reader_returning_within_the_grace_keeps_the_generation():
    run = StreamRun("s", grace=0.1)
    run.task = asyncio.create_task(asyncio.sleep(10))
    first = stream_response(run, preamble=b"", keep_alive=10)
    await anext(first)
    await first.aclose()
    second = stream_response(run, preamble=b"", keep_alive=10)
    await anext(second)
    await asyncio.sleep(0.2)
    assert not run.task.done()
    run.task.cancel()
    await second.aclose()


async def test_retire_compacts_only_once_nobody_reads(monkeypatch, listed):
    monkeypatch.setattr(runs, "COMPACT_AFTER", 0.02)
    run = StreamRun("s1")
    run.log.append(b"a", None)
    run.log.close()
    run.add_reader()  # a slow reader still on the log
    listed(run)
    runs.retire(run, after=60)
    await asyncio.sleep(0.1)
    assert run.log.events == [b"a"]  # not compacted under its reader
    run.remove_reader()
    await asyncio.sleep(0.1)
    assert run.log.events == [] and await _read(run.log) == b"a"


async def test_an_sse_only_log_is_compacted_when_its_reader_has_read_it_all(listed):
    """No typed events kept, and no 5 s wait: the finished log shrinks as its reader leaves."""
    run = StreamRun("s2", log=EventLog(keep_typed=False))
    run.add_reader()
    run.log.append(b"id: 0\nevent: token\ndata: {}\n\n", TokenEvent("x"))
    assert run.log.typed is None
    run.log.close()
    listed(run)
    runs.retire(run, after=60)
    assert run.log.events != []  # its reader is still on it
    run.remove_reader()
    assert run.log.events == [] and await _read(run.log) == b"id: 0\nevent: token\ndata: {}\n\n"


async def test_an_unread_sse_only_log_is_compacted_when_it_ends(listed):
    run = StreamRun("s3", log=EventLog(keep_typed=False))
    run.log.append(b"a", TokenEvent("a"))
    run.log.close()
    listed(run)
    runs.retire(run, after=60)
    assert run.log.events == [] and await _read(run.log) == b"a"


async def test_a_run_whose_replay_is_stored_is_forgotten_once_its_redis_copies_are_written(listed):
    run = StreamRun("s5", log=EventLog(keep_typed=False))
    run.log.append(b"x", TokenEvent("x"))
    run.log.close()
    copied = asyncio.get_running_loop().create_future()
    run.mirror = asyncio.ensure_future(copied)
    listed(run)
    runs.retire(run, after=60, replay_stored=True)
    assert runs.RUNS.get("s5") is run  # shutdown still waits for its mirror
    copied.set_result(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert "s5" not in runs.RUNS
    run.mirror = None
    runs.RUNS["s5"] = run
    runs.retire(run, after=60, replay_stored=True)
    assert "s5" not in runs.RUNS and run.log.events == [b"x"]  # forgotten, not compacted
