"""The stand-in itself, against the real anthropic SDK: if it drifted from the API, every test of the
Anthropic path would prove nothing. Sync tests that run their own event loop (``asyncio.run``), so
they need neither pytest-asyncio's configuration nor Django."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import anthropic
import httpx2  # the SDK's own fork of httpx: errors while reading a stream come from it unwrapped
import pytest

from tests.support.anthropic_standin import (
    AnthropicStandIn,
    hang,
    http_error,
    overloaded_midstream,
    text_stream,
)

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def upstream() -> Iterator[AnthropicStandIn]:
    with AnthropicStandIn() as standin:
        yield standin


def sdk(upstream: AnthropicStandIn, **kwargs) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test", base_url=upstream.base_url, max_retries=0, **kwargs)


async def stream_events(client: anthropic.AsyncAnthropic, into: list | None = None) -> list:
    """(time.monotonic(), event) per event of one streamed request, appended to ``into`` as they
    arrive (so a caller still has the earlier ones if the stream raises)."""
    received = [] if into is None else into
    async with client:
        stream = await client.messages.create(
            model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES, stream=True
        )
        async for event in stream:
            received.append((time.monotonic(), event))
    return received


def texts(events: list) -> list[str]:
    return [event.delta.text for _, event in events if event.type == "content_block_delta"]


def test_text_deltas_arrive_in_order_spread_over_time_with_usage(upstream):
    upstream.enqueue(text_stream(["a", "b", "c"], delay=0.2, input_tokens=7, output_tokens=3))
    events = asyncio.run(stream_events(sdk(upstream)))

    assert [event.type for _, event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the ping is swallowed by the SDK
    assert texts(events) == ["a", "b", "c"]
    arrived = [at for at, event in events if event.type == "content_block_delta"]
    assert arrived[-1] - arrived[0] >= 0.3  # two gaps of 0.2 s: sent one by one, not in a burst
    start = events[0][1].message
    assert (start.role, start.model, start.stop_reason) == ("assistant", "claude-sonnet-4-6", None)
    assert start.usage.input_tokens == 7
    message_delta = events[-2][1]
    assert (message_delta.delta.stop_reason, message_delta.usage.output_tokens) == ("end_turn", 3)

    [request] = upstream.requests
    assert request["path"] == "/v1/messages"
    assert request["json"]["messages"] == MESSAGES and request["json"]["stream"] is True
    # The key goes as x-api-key in older SDKs, as a bearer token in this one.
    assert "test" in (request["headers"].get("x-api-key"), request["headers"].get("authorization", "")[7:])
    assert "anthropic-version" in request["headers"]
    assert [text for _, text in upstream.sent_at] == ["a", "b", "c"]
    assert not upstream.disconnected.is_set()


def test_overloaded_inside_the_stream_raises_after_the_earlier_deltas(upstream):
    upstream.enqueue(overloaded_midstream(["x", "y"]))
    events: list = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        asyncio.run(stream_events(sdk(upstream), into=events))

    assert texts(events) == ["x", "y"]
    # The error event comes inside a 200 response: the SDK raises the plain APIStatusError.
    assert type(caught.value) is anthropic.APIStatusError
    assert caught.value.status_code == 200
    assert caught.value.type == "overloaded_error"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert len(upstream.requests) == 1


def test_http_529_raises_overloaded_error_and_is_not_retried(upstream):
    upstream.enqueue(http_error(529, retry_after="0"))
    # Retries allowed: the x-should-retry: false header alone keeps the SDK from retrying.
    with pytest.raises(anthropic.OverloadedError) as caught:
        asyncio.run(stream_events(sdk(upstream).with_options(max_retries=2)))

    assert caught.value.status_code == 529
    assert isinstance(caught.value, anthropic.InternalServerError)
    assert (caught.value.type, caught.value.api_message) == ("overloaded_error", "Overloaded")
    assert caught.value.request_id is not None
    assert len(upstream.requests) == 1


def test_http_400_raises_bad_request_error(upstream):
    upstream.enqueue(http_error(400, "invalid_request_error", "prompt is too long"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        asyncio.run(stream_events(sdk(upstream)))
    assert caught.value.api_message == "prompt is too long"


def test_closing_the_stream_early_is_seen_as_a_disconnect(upstream):
    upstream.enqueue(text_stream(["w"] * 50, delay=0.05))

    async def read_one_delta_and_close() -> None:
        async with sdk(upstream) as client:
            stream = await client.messages.create(model="m", max_tokens=5, messages=MESSAGES, stream=True)
            async for event in stream:
                if event.type == "content_block_delta":
                    break
            await stream.close()

    asyncio.run(read_one_delta_and_close())
    assert upstream.wait_for_disconnect(2)
    assert upstream.cancelled_count == 1
    assert len(upstream.sent_at) < 50  # it stopped streaming


def test_a_hung_stream_times_out_and_the_stand_in_sees_the_disconnect(upstream):
    upstream.enqueue(hang())
    events: list = []
    # The timeout strikes while reading the body, after the headers: newer SDKs wrap it.
    with pytest.raises((httpx2.ReadTimeout, anthropic.APITimeoutError)):
        asyncio.run(stream_events(sdk(upstream, timeout=0.5), into=events))
    assert [event.type for _, event in events] == ["message_start"]
    assert upstream.wait_for_disconnect(2)
    assert upstream.cancelled_count == 1


def test_sequential_requests_share_one_kept_alive_connection(upstream):
    async def three_requests() -> list[str]:
        async with sdk(upstream) as client:
            answers = []
            for word in ("een", "twee"):
                upstream.enqueue(text_stream([word, "!"]))
                stream = await client.messages.create(model="m", max_tokens=5, messages=MESSAGES, stream=True)
                answers.append("".join(texts([(0, event) async for event in stream])))
            upstream.enqueue(text_stream(["drie"]))
            message = await client.messages.create(model="m", max_tokens=5, messages=MESSAGES)
            answers.append(message.content[0].text)
            return answers

    assert asyncio.run(three_requests()) == ["een!", "twee!", "drie"]
    assert [request["connection"] for request in upstream.requests] == [1, 1, 1]
    assert not upstream.disconnected.is_set()


def test_the_default_script_when_nothing_is_queued_and_a_sync_client(upstream):
    client = anthropic.Anthropic(api_key="test", base_url=upstream.base_url, max_retries=0)
    with client, client.messages.stream(model="m", max_tokens=5, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the stand-in."
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 10


def test_stop_ends_a_hung_stream_and_frees_the_port():
    standin = AnthropicStandIn().start()
    standin.enqueue(hang())
    client = anthropic.Anthropic(api_key="test", base_url=standin.base_url, max_retries=0, timeout=30)
    stream = client.messages.create(model="m", max_tokens=5, messages=MESSAGES, stream=True)
    assert next(iter(stream)).type == "message_start"
    began = time.monotonic()
    standin.stop()
    assert time.monotonic() - began < 5
    # The chunked body was cut off: newer SDKs wrap the body's read error as a connection error.
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)):
        list(stream)
    client.close()
