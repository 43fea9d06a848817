"""Reading a run of this process: an SSE body, a whole answer."""

import asyncio

import pytest

from streaming.engine.events import CitationEvent, DoneEvent, ErrorEvent, TokenEvent
from streaming.eventlog import StreamRun, collect, sse_body, stream_response


async def test_collect_waits_for_the_end_and_assembles_the_answer():
    run = StreamRun("s")
    citation = CitationEvent(1, 7, "Tillen", "https://kb.example/tillen", "23 kg")
    done = DoneEvent("s", 5, 9, 3, 2, [1])
    collecting = asyncio.create_task(collect(run))
    await asyncio.sleep(0)
    assert run.readers == 1  # a client waiting for the answer counts as a reader
    for event in (TokenEvent("max "), citation, TokenEvent("23 kg [1]"), done):
        run.log.append(b"", event)
    run.log.close()
    answer = await collecting
    assert (answer.text, answer.citations, answer.done, answer.error) == (
        "max 23 kg [1]",
        {1: citation},
        done,
        None,
    )
    assert run.readers == 0


async def test_collect_keeps_the_error_of_an_answer_that_failed():
    run = StreamRun("s")
    error = ErrorEvent("cancelled", "stopped", True)
    run.log.append(b"", TokenEvent("begin "))
    run.log.append(b"", error)
    run.log.close()
    answer = await collect(run)
    assert (answer.text, answer.done, answer.error) == ("begin ", None, error)


async def test_sse_body_starts_with_the_retry_preamble_from_the_event_asked_for(settings):
    settings.EVI360_SSE_RETRY_MS = 1234
    run = StreamRun("s")
    for data in (b"a", b"b", b"c"):
        run.log.append(data, TokenEvent(""))
    run.log.close()
    assert b"".join([chunk async for chunk in sse_body(run, 1)]) == b"retry: 1234\n\nbc"


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
