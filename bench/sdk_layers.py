"""CPU per upstream delta of the model libraries alone, layer by layer, in this process.

    .venv/bin/python bench/sdk_layers.py [--deltas 600] [--gap-ms 2]

bench/upstream.py (its own process) sends ``--deltas`` deltas ``--gap-ms`` apart, so each one
arrives in a read of its own, as Claude's do. This process reads them, on one event loop, through
ever more of the stack, and takes the event loop thread's CPU time (``time.thread_time``) per
delta, on uvloop as under uvicorn:

1. the HTTP client alone, reading the body (aiohttp; httpx2 as the SDK uses it);
2. + the SDK: ``client.beta.messages.create(stream=True)``, its SSE decoding and event models;
3. + Pydantic AI's ``AnthropicModel`` through the direct API (``model_request_stream``: ours);
4. + Pydantic AI's ``Agent.run_stream`` + ``stream_text(delta=True, debounce_by=None)`` (the
   baseline's API);
5. with ``h2`` and ``hypercorn`` installed, steps 1-2 over HTTP/2 too (httpx2's, the SDK's only
   HTTP/2 client; aiohttp has none), against bench/upstream_h2.py.

Each step's figure over the one before is that layer's cost. Steps run in turns, several
rounds, the median kept. A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.upstream import running  # noqa: E402

MODEL = "claude-sonnet-4-6"
BODY = {
    "model": MODEL,
    "max_tokens": 1024,
    "stream": True,
    "messages": [{"role": "user", "content": "Hoe zwaar mag ik tillen?"}],
}


def clients(base_url: str, transport: str):  # type: ignore[no-untyped-def]
    from anthropic import AsyncAnthropic, DefaultAioHttpClient, DefaultAsyncHttpxClient

    if transport == "aiohttp":
        http = DefaultAioHttpClient()
    elif transport == "h2":  # HTTP/2 with prior knowledge: the upstream is cleartext
        http = DefaultAsyncHttpxClient(http1=False, http2=True)
    else:
        http = DefaultAsyncHttpxClient()
    return AsyncAnthropic(api_key="bench", base_url=base_url, http_client=http, max_retries=0)


def steps(base_url: str, h2_url: str | None = None) -> tuple[dict[str, Callable[[], Awaitable[int]]], dict]:
    """Each step: one streamed answer read through that much of the stack; returns the deltas."""
    from pydantic_ai import Agent
    from pydantic_ai.direct import model_request_stream
    from pydantic_ai.messages import ModelRequest, PartDeltaEvent
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    sdk = {name: clients(base_url, name) for name in ("aiohttp", "httpx")}
    if h2_url:
        sdk["h2"] = clients(h2_url, "h2")
    models = {
        name: AnthropicModel(MODEL, provider=AnthropicProvider(anthropic_client=client))
        for name, client in sdk.items()
    }
    agent = Agent(models["httpx"])
    prompt = [ModelRequest.user_text_prompt("Hoe zwaar mag ik tillen?")]

    def http_only(name: str) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            client = sdk[name]._client  # the SDK's own httpx2.AsyncClient, on its transport
            async with client.stream(
                "POST", f"{str(sdk[name].base_url).rstrip('/')}/v1/messages", json=BODY
            ) as response:
                return sum([chunk.count(b"text_delta") async for chunk in response.aiter_raw()])

        return run

    def sdk_events(name: str) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            stream = await sdk[name].beta.messages.create(**BODY)
            return sum([event.type == "content_block_delta" async for event in stream])

        return run

    def direct(name: str) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            async with model_request_stream(models[name], prompt) as response:
                return sum([isinstance(event, PartDeltaEvent) async for event in response])

        return run

    async def run_stream() -> int:
        async with agent.run_stream("Hoe zwaar mag ik tillen?") as result:
            return sum([1 async for _ in result.stream_text(delta=True, debounce_by=None)])

    runs = {
        "HTTP client (aiohttp)": http_only("aiohttp"),
        "HTTP client (httpx2)": http_only("httpx"),
        "+ SDK events (aiohttp)": sdk_events("aiohttp"),
        "+ SDK events (httpx2)": sdk_events("httpx"),
        "+ Pydantic AI direct API (aiohttp): ours": direct("aiohttp"),
        "+ Pydantic AI direct API (httpx2)": direct("httpx"),
        "+ Agent.run_stream + stream_text (httpx2): the baseline": run_stream,
    }
    if h2_url:
        runs["HTTP client (httpx2, HTTP/2)"] = http_only("h2")
        runs["+ SDK events (httpx2, HTTP/2)"] = sdk_events("h2")
    return runs, sdk


async def measure(base_url: str, rounds: int, h2_url: str | None = None) -> dict[str, float]:
    from pydantic_ai.models import override_allow_model_requests

    with override_allow_model_requests(True):
        runs, sdk = steps(base_url, h2_url)
        try:
            for run in runs.values():
                await run()  # warm-up: lazy imports, connections
            samples: dict[str, list[float]] = {name: [] for name in runs}
            for round_ in range(rounds):
                for name, run in runs.items() if round_ % 2 == 0 else reversed(runs.items()):
                    started = time.thread_time()
                    deltas = await run()
                    samples[name].append((time.thread_time() - started) / max(deltas, 1) * 1e6)
        finally:
            for client in sdk.values():
                await client.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deltas", type=int, default=600)
    parser.add_argument("--gap-ms", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import uvloop  # the servers' event loop (uvicorn[standard])

    with contextlib.ExitStack() as stack:
        base_url, _pid = stack.enter_context(running(args.deltas, 0, args.gap_ms))
        h2_url = None
        if importlib.util.find_spec("h2") and importlib.util.find_spec("hypercorn"):
            from bench import upstream_h2

            h2_url = stack.enter_context(upstream_h2.running(args.deltas, 0, args.gap_ms))
        else:
            print("(HTTP/2 left out: pip install h2 hypercorn to measure it)")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            figures = runner.run(measure(base_url, args.rounds, h2_url))
    print(
        f"CPU per delta, one delta per read ({args.deltas} deltas {args.gap_ms:g} ms apart, median of {args.rounds}):"
    )
    for name, micros in figures.items():
        print(f"  {name:58} {micros:6.0f} µs")


if __name__ == "__main__":
    main()
