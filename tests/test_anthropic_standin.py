"""The stand-in itself, against the real anthropic SDK: if it drifted from the API, every test of the
Anthropic path would prove nothing."""

import asyncio
import time

import anthropic
import pytest

from tests.anthropic_standin import AnthropicStandIn, http_error, overloaded_midstream, text_stream


@pytest.fixture
def upstream():
    with AnthropicStandIn() as standin:
        yield standin


def client(upstream) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test", base_url=upstream.base_url, max_retries=0)


async def collect(upstream, **kwargs):
    received = []
    stream = await client(upstream).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        **kwargs,
    )
    async for event in stream:
        received.append((time.monotonic(), event))
    return received


async def test_text_deltas_arrive_in_order_spread_over_time(upstream):
    upstream.enqueue(text_stream(["a", "b", "c"], delay=0.2, input_tokens=7, output_tokens=3))
    events = await collect(upstream)
    deltas = [(t, e.delta.text) for t, e in events if e.type == "content_block_delta"]
    assert [d for _, d in deltas] == ["a", "b", "c"]
    assert deltas[-1][0] - deltas[0][0] >= 0.3
    assert events[0][1].type == "message_start"
    assert events[0][1].message.usage.input_tokens == 7
    assert next(e for _, e in events if e.type == "message_delta").usage.output_tokens == 3
    assert upstream.requests[0]["json"]["messages"] == [{"role": "user", "content": "hi"}]


async def test_overloaded_inside_the_stream_raises_after_the_earlier_deltas(upstream):
    upstream.enqueue(overloaded_midstream(["x", "y"]))
    seen = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        stream = await client(upstream).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for event in stream:
            if event.type == "content_block_delta":
                seen.append(event.delta.text)
    assert seen == ["x", "y"]
    assert "overloaded" in str(caught.value).lower()


async def test_http_529_is_an_error_and_not_retried(upstream):
    upstream.enqueue(http_error(529))
    with pytest.raises(anthropic.APIStatusError) as caught:
        await collect(upstream)
    assert caught.value.status_code == 529
    assert len(upstream.requests) == 1


async def test_closing_early_is_seen_as_a_disconnect(upstream):
    upstream.enqueue(text_stream(["w"] * 50, delay=0.05))
    stream = await client(upstream).messages.create(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    async for event in stream:
        if event.type == "content_block_delta":
            break
    await stream.close()
    assert await asyncio.to_thread(upstream.wait_for_disconnect, 3)
    assert upstream.cancelled_count == 1


async def test_one_connection_serves_several_requests(upstream):
    sdk = client(upstream)
    for word in ("een", "twee", "drie"):
        upstream.enqueue(text_stream([word]))
        message = await sdk.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].text == word
    assert not upstream.disconnected.is_set()
