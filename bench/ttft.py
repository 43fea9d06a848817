"""Time-to-first-token overhead of the streaming path, at 1 and at N concurrent streams.

    .venv/bin/python bench/ttft.py [--concurrency 1 50] [--rounds 5] [--upstream standin|offline]

Starts a real daphne on a free port with its own SQLite file and the bundled corpus. With
``--upstream standin`` (the default) the app talks to Claude through the real anthropic SDK,
pointed at the Messages API stand-in of the tests, which sends its first text delta
``--model-ttft`` ms after the request arrives; with ``offline`` the offline model answers with no
pauses. Each client posts a question and times request sent → first ``token`` event received; the
overhead is that minus the model's own first-token time. Prints p50/p95/max per concurrency level.
A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.anthropic_standin import AnthropicStandIn, text_stream  # noqa: E402
from tests.support.live_server import live_server  # noqa: E402


async def one_stream(client: httpx.AsyncClient, base: str, token: str) -> float:
    """Seconds from sending the request to receiving the first token event."""
    started = time.perf_counter()
    async with client.stream(
        "POST",
        f"{base}/api/v1/stream/query",
        json={"query": "Hoe zwaar mag ik tillen?"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        response.raise_for_status()
        first = None
        async for chunk in response.aiter_bytes():
            if first is None and b"event: token" in chunk:
                first = time.perf_counter() - started
        assert first is not None, "no token event"
        return first


async def level(base: str, token: str, concurrency: int, rounds: int) -> list[float]:
    limits = httpx.Limits(max_connections=concurrency + 5, max_keepalive_connections=concurrency + 5)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await one_stream(client, base, token)  # warm-up
        results: list[float] = []
        for _ in range(rounds):
            results += await asyncio.gather(*(one_stream(client, base, token) for _ in range(concurrency)))
        return results


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--upstream", choices=["standin", "offline"], default="standin")
    parser.add_argument("--model-ttft", type=float, default=200.0, help="stand-in's first-delta delay, ms")
    args = parser.parse_args()

    settings = {
        "EVI360_RATE_LIMIT": "100000/m",
        "EVI360_MAX_CONCURRENT_STREAMS": "1000",
        "EVI360_OFFLINE_TOKEN_DELAY_MS": "0",
        "LOG_LEVEL": "WARNING",
    }
    model_ttft = 0.0
    with contextlib.ExitStack() as stack:
        if args.upstream == "standin":
            model_ttft = args.model_ttft / 1000
            upstream = stack.enter_context(
                AnthropicStandIn(
                    default_script=lambda: text_stream(
                        ["Til ", "maximaal ", "23 kg [1]."], first_delay=model_ttft
                    )
                )
            )
            settings.update(
                EVI360_MODEL="anthropic:claude-sonnet-4-6",
                ANTHROPIC_API_KEY="sk-bench",
                ANTHROPIC_BASE_URL=upstream.base_url,
                EVI360_UPSTREAM_MAX_RETRIES="0",
            )
        server = stack.enter_context(live_server(Path(tempfile.mkdtemp(prefix="evi360-bench-")), **settings))
        token = server.token()
        print(f"upstream: {args.upstream} (model's own time to first token: {model_ttft * 1000:.0f} ms)")
        for concurrency in args.concurrency:
            results = asyncio.run(level(server.base, token, concurrency, args.rounds))
            overhead = sorted((r - model_ttft) * 1000 for r in results)
            print(
                f"  {concurrency:>3} concurrent streams, {len(overhead)} requests: TTFT overhead "
                f"p50 {percentile(overhead, 50):.1f} ms, p95 {percentile(overhead, 95):.1f} ms, "
                f"max {overhead[-1]:.1f} ms"
            )


if __name__ == "__main__":
    main()
