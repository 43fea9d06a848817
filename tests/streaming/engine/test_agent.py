"""The specialist agent's answer() stream: offline model, FunctionModel with chosen deltas, and
the real anthropic SDK against a stand-in of the Messages API on loopback."""

from __future__ import annotations

import asyncio
import itertools
import re
import time

import pytest
from pydantic_ai.messages import ModelRequest, ModelResponse, UserPromptPart
from pydantic_ai.models import override_allow_model_requests
from pydantic_ai.models.function import AgentInfo, FunctionModel

from streaming.engine.agent import (
    INSTRUCTIONS,
    Sources,
    TextDelta,
    UpstreamError,
    Usage,
    answer,
    anthropic_http_client,
    build_model,
    get_model,
    model_display_name,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def collect(stream):
    return [event async for event in stream]


def deltas(events):
    return [e.text for e in events if isinstance(e, TextDelta)]


async def test_offline_answer_streams_word_by_word_with_valid_markers(corpus):
    events = await collect(answer("Hoe zwaar mag ik tillen?", "nl"))
    assert isinstance(events[0], Sources) and isinstance(events[-1], Usage)
    sources = events[0].items
    assert [s.number for s in sources] == list(range(1, len(sources) + 1))
    assert len(sources) == 5
    text = "".join(deltas(events))
    assert len(deltas(events)) > 20  # word by word, not one block
    markers = {int(m) for m in re.findall(r"\[(\d+)\]", text)}
    assert markers and markers <= {s.number for s in sources}
    assert "kg" in text
    assert events[-1].output_tokens > 0


async def test_offline_answer_in_english(corpus):
    events = await collect(answer("What is the noise limit at work?", "en"))
    assert "dB" in "".join(deltas(events))
    assert events[0].items[0].chunk.language == "en"


async def test_offline_model_pauses_between_words(corpus, settings):
    settings.EVI360_OFFLINE_TOKEN_DELAY_MS = 20
    stamps = []
    async for event in answer("Hoe zwaar mag ik tillen?", "nl"):
        if isinstance(event, TextDelta):
            stamps.append(time.monotonic())
    assert stamps[-1] - stamps[0] >= 0.02 * (len(stamps) - 1) * 0.9


async def test_no_sources_means_an_honest_no(db):
    events = await collect(answer("Hoe zwaar mag ik tillen?", "nl"))
    assert events[0] == Sources([])
    assert "geen bronnen" in "".join(deltas(events))


async def test_function_model_deltas_come_out_one_by_one(corpus):
    chosen = ["Til ", "niet meer dan ", "23 kg [1]", ". Ëén ", "ß€ ✓\nnieuwe regel"]
    seen_prompt = {}

    async def stream(messages, info: AgentInfo):
        seen_prompt["text"] = messages[-1].parts[-1].content
        seen_prompt["instructions"] = info.instructions
        for delta in chosen:
            yield delta

    events = await collect(
        answer("Hoe zwaar mag ik tillen?", "nl", model=FunctionModel(stream_function=stream))
    )
    assert deltas(events) == chosen
    assert "Answer language: Dutch (Nederlands) [nl]" in seen_prompt["text"]
    assert "Question: Hoe zwaar mag ik tillen?" in seen_prompt["text"]
    assert "[1] " in seen_prompt["text"] and "[5] " in seen_prompt["text"]
    assert seen_prompt["instructions"].strip() == INSTRUCTIONS.strip()


async def test_each_delta_is_yielded_before_the_model_produces_the_next(corpus):
    gate = asyncio.Event()

    async def stream(messages, info):
        yield "first"
        await gate.wait()  # the model stalls: the first delta must already be out
        yield "second"

    stream_iter = answer("tillen", "nl", model=FunctionModel(stream_function=stream))
    assert isinstance(await anext(stream_iter), Sources)
    # asyncio.timeout, not wait_for: wait_for would step the generator from another task.
    async with asyncio.timeout(2):
        assert await anext(stream_iter) == TextDelta("first")
    gate.set()
    async with asyncio.timeout(2):
        assert await anext(stream_iter) == TextDelta("second")
    assert isinstance(await anext(stream_iter), Usage)
    await stream_iter.aclose()


async def test_history_is_passed_to_the_model(corpus):
    received = []

    async def stream(messages, info):
        received.extend(messages)
        yield "ok"

    await collect(
        answer(
            "En bij hitte?",
            "nl",
            history=[("Hoe zwaar mag ik tillen?", "23 kg [1].")],
            model=FunctionModel(stream_function=stream),
        )
    )
    assert isinstance(received[0], ModelRequest) and received[0].parts[0] == UserPromptPart(
        content="Hoe zwaar mag ik tillen?", timestamp=received[0].parts[0].timestamp
    )
    assert isinstance(received[1], ModelResponse) and received[1].parts[0].content == "23 kg [1]."
    assert "En bij hitte?" in received[2].parts[-1].content


async def test_a_failing_model_raises_a_typed_upstream_error(corpus):
    async def stream(messages, info):
        yield "partial "
        raise RuntimeError("boom")  # a bug in a model is not an upstream error

    with pytest.raises(RuntimeError):
        await collect(answer("tillen", "nl", model=FunctionModel(stream_function=stream)))


async def test_a_cut_off_upstream_connection_is_retryable(corpus):
    import httpx2

    async def stream(messages, info):
        yield "half "
        raise httpx2.RemoteProtocolError("peer closed connection without sending complete message body")

    with pytest.raises(UpstreamError) as caught:
        await collect(answer("tillen", "nl", model=FunctionModel(stream_function=stream)))
    assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)


def test_the_model_is_built_once_per_process():
    assert get_model() is get_model()
    assert model_display_name() == "offline"


# --- The real anthropic SDK against the stand-in ------------------------------------------------


# Every test of the real SDK runs on both of its HTTP clients: the errors must map the same.
@pytest.fixture(params=["aiohttp", "httpx"])
async def claude(request, anthropic_upstream, settings):
    settings.ANTHROPIC_API_KEY = "sk-test"
    settings.ANTHROPIC_BASE_URL = anthropic_upstream.base_url
    settings.EVI360_UPSTREAM_MAX_RETRIES = 0
    settings.EVI360_ANTHROPIC_HTTP = request.param
    with override_allow_model_requests(True):
        model = build_model("anthropic:claude-sonnet-4-6")
        yield model
    await model.client.close()


@pytest.mark.parametrize(
    ("setting", "transport"), [("aiohttp", "AiohttpTransport"), ("httpx", "AsyncHTTPTransport")]
)
def test_the_sdk_talks_through_the_http_client_set_with_every_connection_kept(settings, setting, transport):
    settings.EVI360_ANTHROPIC_HTTP, settings.EVI360_UPSTREAM_MAX_CONNECTIONS = setting, 300
    client = anthropic_http_client()
    assert type(client._transport).__name__ == transport
    limits = client._transport.limits if setting == "aiohttp" else client._transport._pool
    if setting == "aiohttp":
        assert (limits.max_connections, limits.max_keepalive_connections) == (300, 300)
    else:
        assert (limits._max_connections, limits._max_keepalive_connections) == (300, 300)


async def test_anthropic_deltas_arrive_one_by_one_as_sent(corpus, anthropic_upstream, claude):
    from tests.support.anthropic_standin import text_stream

    # The first request of a process pays for lazy imports in the SDK's stream parsing; measure
    # the second, as a running server would see it.
    anthropic_upstream.enqueue(text_stream(["warm"]))
    await collect(answer("tillen", "nl", model=claude))
    anthropic_upstream.sent_at.clear()

    sent = ["Til ", "maximaal ", "23 kg ", "[1]", "."]
    anthropic_upstream.enqueue(text_stream(sent, delay=0.15, input_tokens=321, output_tokens=7))
    received = []
    async for event in answer("Hoe zwaar mag ik tillen?", "nl", model=claude):
        if isinstance(event, TextDelta):
            received.append((time.monotonic(), event.text))
        last = event
    assert [t for _, t in received] == sent
    assert last == Usage(input_tokens=321, output_tokens=7)
    # Spread over time as the stand-in sent them, not delivered in one burst at the end.
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(received)]
    assert min(gaps) > 0.05
    # Each delta came out before the stand-in sent the next one.
    sent_times = [t for t, _ in anthropic_upstream.sent_at]
    assert all(got < next_sent for (got, _), next_sent in zip(received, sent_times[1:], strict=False))
    request = anthropic_upstream.requests[-1]
    assert request["json"]["stream"] is True
    assert request["json"]["model"] == "claude-sonnet-4-6"
    assert "Question: Hoe zwaar mag ik tillen?" in str(request["json"]["messages"])
    assert model_display_name(claude) == "anthropic:claude-sonnet-4-6"


async def test_anthropic_overloaded_mid_stream_is_a_retryable_upstream_error(
    corpus, anthropic_upstream, claude
):
    from tests.support.anthropic_standin import overloaded_midstream

    anthropic_upstream.enqueue(overloaded_midstream(["Eerst ", "dit "]))
    received = []
    with pytest.raises(UpstreamError) as caught:
        async for event in answer("tillen", "nl", model=claude):
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert received == ["Eerst ", "dit "]
    assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)


async def test_anthropic_529_before_the_stream_is_a_retryable_upstream_error(
    corpus, anthropic_upstream, claude
):
    from tests.support.anthropic_standin import http_error

    anthropic_upstream.enqueue(http_error(529))
    with pytest.raises(UpstreamError) as caught:
        await collect(answer("tillen", "nl", model=claude))
    assert caught.value.code == "upstream_unavailable"
    assert "Overloaded" not in caught.value.message  # our words, not the upstream's
    assert len(anthropic_upstream.requests) == 1


async def test_anthropic_bad_request_is_a_non_retryable_upstream_error(corpus, anthropic_upstream, claude):
    from tests.support.anthropic_standin import http_error

    anthropic_upstream.enqueue(http_error(400, "invalid_request_error", "prompt is too long"))
    with pytest.raises(UpstreamError) as caught:
        await collect(answer("tillen", "nl", model=claude))
    assert (caught.value.code, caught.value.retryable) == ("upstream_error", False)


async def test_cancelling_the_consumer_cancels_the_upstream_request(corpus, anthropic_upstream, claude):
    from tests.support.anthropic_standin import text_stream

    anthropic_upstream.enqueue(text_stream(["a "] * 50, delay=0.1))
    stream_iter = answer("tillen", "nl", model=claude)
    async for event in stream_iter:
        if isinstance(event, TextDelta):
            break
    await stream_iter.aclose()
    assert await asyncio.to_thread(anthropic_upstream.wait_for_disconnect, 3)


def test_warm_up_runs_the_agent_in_process_without_the_database(monkeypatch):
    """Run at server start (evi360/asgi.py), before the database may even be migrated."""
    from streaming.engine import agent

    def no_database(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the warm-up must not touch the database")

    runs: list[str] = []
    real_request = agent.model_request_stream

    def counting_request(model, *args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(model.model_name)
        return real_request(model, *args, **kwargs)

    monkeypatch.setattr(agent, "run_db", no_database)
    monkeypatch.setattr(agent, "model_request_stream", counting_request)
    agent.warm_up()
    assert len(runs) == 1 and runs[0].startswith("function:")


async def test_given_sources_are_answered_from_without_retrieving(monkeypatch):
    from streaming.engine import agent

    async def no_database(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("retrieval must be skipped")

    async def stream(messages, info):  # type: ignore[no-untyped-def]
        yield "Zie [1]."

    monkeypatch.setattr(agent, "run_db", no_database)
    events = [
        e async for e in agent.answer("q", "nl", sources=[], model=FunctionModel(stream_function=stream))
    ]
    assert events[0] == agent.Sources([])
    assert "".join(e.text for e in events if isinstance(e, agent.TextDelta)) == "Zie [1]."
