import asyncio

import pytest

from streaming.engine.events import TokenEvent
from streaming.engine.wire import KEEP_ALIVE
from streaming.eventlog import memory as eventlog
from streaming.eventlog.memory import EventLog, StreamRun, stream_response


async def test_readers_get_every_event_from_where_they_start_until_close():
    log = EventLog()
    log.append(b"a", None)

    async def read_all(start):
        return [chunk async for chunk in log.read(start)]

    first, late = asyncio.create_task(read_all(0)), asyncio.create_task(read_all(1))
    await asyncio.sleep(0)
    log.append(b"b", None)
    log.append(b"c", None)
    log.close()
    assert b"".join(await first) == b"abc"
    assert b"".join(await late) == b"bc"


async def test_keep_alive_comment_after_silence():
    log = EventLog()
    reader = log.read(keep_alive=0.05)
    assert await asyncio.wait_for(anext(reader), 1) == KEEP_ALIVE
    log.append(b"x", None)
    assert await anext(reader) == b"x"
    await reader.aclose()


async def _waiting_reader(log: EventLog):
    """A reader of ``log`` waiting for its next write, and that write (a task)."""
    reader = log.read()
    first = asyncio.create_task(anext(reader))
    await asyncio.sleep(0)
    return reader, first


async def test_events_a_running_producer_adds_go_out_in_one_write():
    # Like Pydantic AI: a yield to the event loop between the deltas of one upstream read.
    log = EventLog()
    reader, first = await _waiting_reader(log)
    for text in (b"a", b"b", b"c"):
        log.append(text, None)
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)  # and then the producer waits for the network
    assert first.done() and first.result() == b"abc"
    await reader.aclose()


async def test_typed_events_a_running_producer_adds_come_as_one_batch():
    # What the OpenAI-compatible endpoint writes at once.
    log = EventLog()
    batches = log.follow_batches()
    first = asyncio.create_task(anext(batches))
    await asyncio.sleep(0)
    events = [TokenEvent(text) for text in ("a", "b", "c")]
    for event in events:
        log.append(b"", event)
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert first.done() and first.result() == events
    await batches.aclose()


async def test_a_token_alone_is_not_held_for_the_next():
    log = EventLog()
    reader, first = await _waiting_reader(log)
    log.append(b"a", None)
    await asyncio.sleep(0.05)  # the next token is 50 ms away: this one is out long before
    assert first.done() and first.result() == b"a"
    log.append(b"b", None)
    assert await asyncio.wait_for(anext(reader), 1) == b"b"
    await reader.aclose()


async def test_a_producer_that_never_waits_still_streams(monkeypatch):
    monkeypatch.setattr(eventlog, "COALESCE_ROUNDS", 4)
    log = EventLog()
    chunks: list[bytes] = []

    async def read_all():
        async for chunk in log.read():
            chunks.append(chunk)

    reader = asyncio.create_task(read_all())
    await asyncio.sleep(0)
    for n in range(20):
        log.append(b"%d," % n, None)
        await asyncio.sleep(0)
    log.close()
    await reader
    assert b"".join(chunks) == b"".join(b"%d," % n for n in range(20))
    assert 1 < len(chunks) <= 20 // 4 + 1


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


async def _read(log: EventLog, start: int = 0) -> bytes:
    return b"".join([chunk async for chunk in log.read(start)])


async def test_a_compacted_log_replays_the_same_bytes_from_any_event():
    log = EventLog()
    for data in (b"one ", b"two ", b"three"):
        log.append(data, None)
    log.close()
    before = [await _read(log, start) for start in range(4)]
    log.compact()
    assert log.events == [] and log.typed == [] and len(log) == 3
    assert [await _read(log, start) for start in range(4)] == before


async def test_retire_compacts_only_once_nobody_reads(monkeypatch):
    from streaming.eventlog import memory as eventlog

    monkeypatch.setattr(eventlog, "COMPACT_AFTER", 0.02)
    run = StreamRun("s1")
    run.log.append(b"a", None)
    run.log.close()
    run.add_reader()  # a slow reader still on the log
    eventlog.RUNS["s1"] = run
    try:
        eventlog.retire(run, after=60)
        await asyncio.sleep(0.1)
        assert run.log.events == [b"a"]  # not compacted under its reader
        run.remove_reader()
        await asyncio.sleep(0.1)
        assert run.log.events == [] and await _read(run.log) == b"a"
    finally:
        eventlog.RUNS.pop("s1", None)


async def test_an_sse_only_log_is_compacted_when_its_reader_has_read_it_all():
    """No typed events kept, and no 5 s wait: the finished log shrinks as its reader leaves."""
    from streaming.eventlog import memory as eventlog

    run = StreamRun("s2", log=EventLog(keep_typed=False))
    run.add_reader()
    run.log.append(b"id: 0\nevent: token\ndata: {}\n\n", TokenEvent("x"))
    assert run.log.typed is None
    run.log.close()
    eventlog.RUNS["s2"] = run
    try:
        eventlog.retire(run, after=60)
        assert run.log.events != []  # its reader is still on it
        run.remove_reader()
        assert run.log.events == [] and await _read(run.log) == b"id: 0\nevent: token\ndata: {}\n\n"
    finally:
        eventlog.RUNS.pop("s2", None)


async def test_an_unread_sse_only_log_is_compacted_when_it_ends():
    from streaming.eventlog import memory as eventlog

    run = StreamRun("s3", log=EventLog(keep_typed=False))
    run.log.append(b"a", TokenEvent("a"))
    run.log.close()
    eventlog.RUNS["s3"] = run
    try:
        eventlog.retire(run, after=60)
        assert run.log.events == [] and await _read(run.log) == b"a"
    finally:
        eventlog.RUNS.pop("s3", None)


async def test_typed_events_cannot_be_followed_on_a_log_that_keeps_none():
    log = EventLog(keep_typed=False)
    with pytest.raises(RuntimeError):
        await anext(log.follow())


async def test_a_reader_waiting_when_it_is_cancelled_leaves_no_waiter_behind():
    log = EventLog()
    reader = asyncio.create_task(_read(log))
    await asyncio.sleep(0)
    assert len(log._waiters) == 1
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert log._waiters == []
    log.append(b"x", None)  # and appending after that wakes nobody, breaks nothing


async def test_a_run_whose_replay_is_stored_is_forgotten_once_its_redis_copies_are_written():
    from streaming.eventlog import memory as eventlog

    run = StreamRun("s5", log=EventLog(keep_typed=False))
    run.log.append(b"x", TokenEvent("x"))
    run.log.close()
    copied = asyncio.get_running_loop().create_future()
    run.mirror = asyncio.ensure_future(copied)
    eventlog.RUNS["s5"] = run
    try:
        eventlog.retire(run, after=60, replay_stored=True)
        assert eventlog.RUNS.get("s5") is run  # shutdown still waits for its mirror
        copied.set_result(None)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert "s5" not in eventlog.RUNS
        run.mirror = None
        eventlog.RUNS["s5"] = run
        eventlog.retire(run, after=60, replay_stored=True)
        assert "s5" not in eventlog.RUNS and run.log.events == [b"x"]  # forgotten, not compacted
    finally:
        eventlog.RUNS.pop("s5", None)


@pytest.mark.django_db(transaction=True)
async def test_a_reader_of_a_cancelled_run_gets_a_terminal_event(small_kb, user, scripted_model):
    """Another tab reading a stream that is stopped (DELETE) must be told to stop, not reconnect."""
    from streaming.engine import generate as generation
    from tests.conftest import new_session, parse_sse

    scripted_model(["begin ", "nooit"], before=asyncio.Event().wait)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session), resume_grace=10)
    body = stream_response(run, preamble=b"", keep_alive=10)
    reading = asyncio.create_task(_collect(body))
    for _ in range(500):  # until the first token is out
        if len(run.log.events) >= 2:
            break
        await asyncio.sleep(0.01)
    run.task.cancel()
    events = parse_sse(await asyncio.wait_for(reading, 10))
    assert [e[1] for e in events] == ["session", "token", "error"]
    assert events[-1][2] == {
        "code": "cancelled",
        "message": "The answer was stopped before it was finished.",
        "retryable": True,
    }


async def _collect(body) -> bytes:
    return b"".join([chunk async for chunk in body])
