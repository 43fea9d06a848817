import asyncio

import pytest

from streaming.engine.events import TokenEvent
from streaming.engine.wire import KEEP_ALIVE
from streaming.eventlog import memory
from streaming.eventlog.memory import EventLog


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
    monkeypatch.setattr(memory, "COALESCE_ROUNDS", 4)
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
