"""The generation task: events in the log, in order, and the session row for every outcome."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from pydantic_ai.exceptions import ModelHTTPError

from citations.query_vectors import VECTORS
from citations.retrieval import retrieve
from streaming.engine import generate as generation
from streaming.engine.runtime import RUNTIME
from streaming.eventlog import RUNS
from streaming.models import Status, StreamCitation, StreamSession
from tests.conftest import new_session, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)


async def run_to_end(session) -> list[tuple[int, str, dict]]:
    run = generation.start(generation.StreamRequest(session=session))
    await run.task
    return parse_sse(b"".join(run.log.events))


@sync_to_async
def reload(session) -> StreamSession:
    return StreamSession.objects.get(pk=session.pk)


@sync_to_async
def citations_of(session) -> list[tuple[int, str, int]]:
    return list(StreamCitation.objects.filter(session=session).values_list("marker", "title", "offset"))


async def test_event_order_citations_before_their_tokens_and_done(small_kb, user, scripted_model, settings):
    settings.EVI360_EVENT_RETENTION = 0
    scripted_model(["Til ", "niet meer dan 23 kg [", "1", "]. Bij lawaai [2][", "9] en [1] weer", "."])
    query = "tillen, 80 dB en beeldschermwerk"
    session = await new_session(user, query=query)
    vector = await VECTORS.embed(query)  # the generation retrieves with it (hybrid)
    expected = [c.title for c in await sync_to_async(retrieve)(query, "nl", 5, vector=vector)]
    assert len(expected) == 3
    events = await run_to_end(session)

    assert [e[0] for e in events] == list(range(len(events)))
    kinds = [e[1] for e in events]
    assert kinds[0] == "session" and kinds[-1] == "done"
    assert events[0][2] == {
        "session_id": str(session.id),
        "conversation_id": str(session.conversation_id),
        "language": "nl",
        "model": "scripted",
    }
    tokens = [e[2]["text"] for e in events if e[1] == "token"]
    assert "".join(tokens) == "Til niet meer dan 23 kg [1]. Bij lawaai [2][9] en [1] weer."
    assert not any(t.endswith(("[", "[1", "[9")) for t in tokens)
    # One citation per known marker, each before the first token containing it; [9] has no source.
    citations = [(i, e[2]) for i, e in enumerate(events) if e[1] == "citation"]
    assert [c["marker"] for _, c in citations] == [1, 2]
    for index, citation in citations:
        marker = f"[{citation['marker']}]"
        first = next(i for i, e in enumerate(events) if e[1] == "token" and marker in e[2]["text"])
        assert index < first
    assert [c["source"]["title"] for _, c in citations] == expected[:2]
    by_title = {c["source"]["title"]: c["source"] for _, c in citations}
    if "Tillen" in by_title:
        assert by_title["Tillen"]["url"] == "https://kb.example/tillen"
        assert "23 kg" in by_title["Tillen"]["snippet"]
    done = events[-1][2]
    assert done["status"] == "completed" and done["citations"] == [1, 2]
    assert done["ttft_ms"] is not None and done["duration_ms"] >= done["ttft_ms"]

    row = await reload(session)
    assert row.status == Status.COMPLETED
    assert row.answer == "".join(tokens)
    assert row.token_events == len(tokens)
    assert row.ttft_ms == done["ttft_ms"] and row.duration_ms == done["duration_ms"]
    assert row.first_token_at and row.finished_at
    answer = row.answer
    assert await citations_of(session) == [
        (1, expected[0], answer.index("[1]")),
        (2, expected[1], answer.index("[2]")),
    ]
    assert str(session.id) not in RUNS


async def test_markers_are_numbered_by_first_appearance(small_kb, user, scripted_model, settings):
    """The model cites its sources [3] then [1]: the reader sees [1] then [2], each the source
    the model meant, in the text, the events, done and the stored citations alike."""
    settings.EVI360_EVENT_RETENTION = 0
    scripted_model(["Bij lawaai [", "3] en tillen [1", "], weer [3][", "7]."])
    query = "tillen, 80 dB en beeldschermwerk"
    session = await new_session(user, query=query)
    vector = await VECTORS.embed(query)
    retrieved = [c.title for c in await sync_to_async(retrieve)(query, "nl", 5, vector=vector)]
    events = await run_to_end(session)
    text = "".join(e[2]["text"] for e in events if e[1] == "token")
    assert text == "Bij lawaai [1] en tillen [2], weer [1][7]."  # [7]: no such source, as written
    citations = [e[2] for e in events if e[1] == "citation"]
    assert [(c["marker"], c["source"]["title"]) for c in citations] == [(1, retrieved[2]), (2, retrieved[0])]
    assert events[-1][2]["citations"] == [1, 2]
    row = await reload(session)
    assert row.answer == text
    assert await citations_of(session) == [
        (1, retrieved[2], text.index("[1]")),
        (2, retrieved[0], text.index("[2]")),
    ]


async def test_multiline_and_non_ascii_text_arrives_intact(small_kb, user, scripted_model):
    deltas = ["Één ", "regel\n", "twee€ ", "✓ ", "𝄞\r\n", "ß"]
    scripted_model(deltas)
    events = await run_to_end(await new_session(user))
    assert [e[2]["text"] for e in events if e[1] == "token"] == deltas


async def test_upstream_failure_mid_stream_is_an_error_event_and_row(small_kb, user, scripted_model):
    scripted_model(["Eerst ", "dit "], error=ModelHTTPError(529, "claude", {"type": "overloaded_error"}))
    session = await new_session(user)
    events = await run_to_end(session)
    assert [e[1] for e in events] == ["session", "token", "token", "error"]
    assert events[-1][2] == {
        "code": "upstream_unavailable",
        "message": "The language model is busy or unreachable right now. Please try again in a moment.",
        "retryable": True,
    }
    row = await reload(session)
    assert (row.status, row.error_code, row.answer) == (Status.ERROR, "upstream_unavailable", "Eerst dit ")


async def test_a_connection_cut_mid_answer_is_upstream_unavailable(small_kb, user, scripted_model, caplog):
    import httpx2

    scripted_model(["Eerst "], error=httpx2.RemoteProtocolError("peer closed connection"))
    session = await new_session(user)
    events = await run_to_end(session)
    message = "The connection to the language model was lost. Please try again in a moment."
    assert events[-1][2] == {"code": "upstream_unavailable", "message": message, "retryable": True}
    row = await reload(session)
    assert (row.status, row.error_code, row.error_message) == (Status.ERROR, "upstream_unavailable", message)
    assert not [r for r in caplog.records if r.exc_info]  # a model failure is no bug of ours


async def test_an_unexpected_failure_is_internal_and_says_nothing_secret(
    small_kb, user, scripted_model, caplog
):
    scripted_model(["x"], error=RuntimeError("password=hunter2 in a traceback"))
    session = await new_session(user)
    events = await run_to_end(session)
    assert events[-1][1] == "error" and events[-1][2]["code"] == "internal"
    assert "hunter2" not in json.dumps(events)
    row = await reload(session)
    assert (row.status, row.error_message) == (
        Status.ERROR,
        "Something went wrong on our side while answering. Please try again.",
    )
    [logged] = [r for r in caplog.records if r.exc_info]
    assert logged.getMessage() == f"stream {session.id} failed" and logged.name == "streaming.engine.generate"


async def test_timeout_stops_the_model_and_records_timeout(small_kb, user, scripted_model, settings):
    settings.EVI360_STREAM_TIMEOUT = 0.3
    state = scripted_model(["begin ", "never"], before=asyncio.Event().wait)
    session = await new_session(user)
    events = await run_to_end(session)
    assert [e[1] for e in events] == ["session", "token", "error"]
    assert events[-1][2]["code"] == "timeout" and events[-1][2]["retryable"] is True
    assert state["cancelled"] == 1  # the model call was cancelled, not left running
    row = await reload(session)
    assert (row.status, row.error_code, row.answer) == (Status.TIMEOUT, "timeout", "begin ")
    assert (
        row.error_message
        == events[-1][2]["message"]
        == ("The answer took too long and was stopped. Please try again.")
    )


async def test_cancelling_records_cancelled_with_what_was_streamed(small_kb, user, scripted_model):
    state = scripted_model(["gestreamd ", "nooit"], before=asyncio.Event().wait)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session))
    async for chunk in run.log.read():  # until the first token is out
        if b"event: token" in chunk:
            break
    run.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run.task
    assert state["cancelled"] == 1
    assert run.log.closed
    # Its one terminal event tells any other reader (or a replay) that the stream has ended.
    assert not any(b"event: done" in e for e in run.log.events)
    assert [e for e in run.log.events if b"event: error" in e] == run.log.events[-1:]
    assert b'"code":"cancelled"' in run.log.events[-1]
    assert json.loads(run.log.events[-1].split(b"data: ", 1)[1]) == {
        "code": "cancelled",
        "message": "The answer was stopped before it was finished.",
        "retryable": True,
    }
    row = await reload(session)
    assert (row.status, row.answer, row.token_events) == (Status.CANCELLED, "gestreamd ", 1)
    assert (row.error_code, row.error_message) == ("cancelled", "The client went away.")


async def test_no_sources_still_streams_an_answer(db, user, scripted_model):
    scripted_model(["Geen ", "bronnen [1]."])
    session = await new_session(user, query="quantumchromodynamica")
    events = await run_to_end(session)
    assert "citation" not in [e[1] for e in events]
    assert events[-1][2]["citations"] == []


async def test_an_outcome_the_database_refuses_is_written_when_it_is_back(
    small_kb, user, scripted_model, monkeypatch
):
    from django.db import OperationalError

    from streaming.store import writes

    real = writes.record_outcomes
    attempts = []

    def flaky(outcomes):
        attempts.extend(outcome.status for _, outcome in outcomes)
        if len(attempts) <= 3:  # PostgreSQL restarting
            raise OperationalError("server closed the connection unexpectedly")
        return real(outcomes)

    monkeypatch.setattr(writes, "record_outcomes", flaky)
    monkeypatch.setattr(RUNTIME, "retry_delays", (0.01,) * 5)
    scripted_model(["Til ", "niet ", "te zwaar."])
    session = await new_session(user)
    events = await run_to_end(session)
    assert events[-1][1] == "done"  # the client is not kept waiting for the database
    async with asyncio.timeout(10):
        await RUNTIME.settled()
    assert len(attempts) == 4
    row = await reload(session)
    assert row.status == Status.COMPLETED and row.answer == "Til niet te zwaar."
