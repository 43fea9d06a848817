"""Where a delta's CPU goes on the real path, split by layer, with py-spy.

    .venv/bin/python bench/profile_real.py [--server ours baseline] [--concurrency 50] [--seconds 20]
        [--path anthropic|scripted] [--set EVI360_ANTHROPIC_HTTP=httpx]

Starts the Messages API upstream (bench/upstream.py: 60 deltas, 20 ms apart) and the server (ours
under uvicorn with the real anthropic SDK, or the FastAPI baseline), keeps ``--concurrency``
streams open for ``--seconds`` while ``py-spy record --format raw`` samples the server at 250 Hz,
then files each sample under the innermost frame that belongs to a layer:

- **HTTP client**: httpx2, httpcore, h11, anyio, aiohttp and the SDK's vendored aiohttp transport;
- **SDK**: ``anthropic`` (SSE decoding, JSON, building its event models);
- **Pydantic AI**: ``pydantic_ai`` (mapping SDK events to parts and deltas);
- **ours / the app**: ``streaming``, ``citations``, ``evi360`` for ours, ``bench`` for the baseline
  (and FastAPI/Starlette for it);
- **ASGI server**: uvicorn, daphne, Django's handlers;
- **event loop**: asyncio with no frame of the layers above (scheduling, the selector, sockets).

A sample in the standard library or pydantic counts for the layer that called it. µs per delta
= the layer's share of the samples times the server's CPU time (psutil) over the window / deltas
received. A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.suite import FIRST_MS, GAP_MS, SETTINGS, TOKENS, baseline, client_for, cpu, one_stream, ours  # noqa: E402
from bench.upstream import running  # noqa: E402

LAYERS = {  # the top-level package (or module) of a frame's file -> its layer
    **dict.fromkeys(
        ("httpx2", "httpcore", "h11", "anyio", "aiohttp", "sniffio", "multidict", "yarl"), "HTTP client"
    ),
    "anthropic": "SDK",
    **dict.fromkeys(
        ("pydantic_ai", "pydantic_graph", "genai_prices", "opentelemetry", "logfire"), "Pydantic AI"
    ),
    **dict.fromkeys(("streaming", "citations", "evi360", "bench", "fastapi", "starlette"), "app"),
    **dict.fromkeys(("uvicorn", "daphne", "django", "twisted", "asgiref", "h11_impl"), "ASGI server"),
    **dict.fromkeys(("asyncio", "selectors.py", "uvloop"), "event loop"),
}
# The SDK vendors its aiohttp transport: that is HTTP client, not event parsing.
VENDORED_HTTP = "anthropic/_vendor/httpx_aiohttp"


def layer_of(frames: list[str]) -> str:
    """The layer of one sample: ``frames`` outermost first, each ``function (path:line)`` with the
    path relative to site-packages or the project (py-spy's raw format); the innermost frame of a
    known layer wins, so the standard library counts for whoever called it."""
    for frame in reversed(frames):
        path = frame.rpartition(" (")[2]
        if path.startswith(VENDORED_HTTP):
            return "HTTP client"
        if layer := LAYERS.get(path.split("/", 1)[0]):
            return layer
    return "other"


# Threads py-spy samples while they wait (its idle detection misses these): not CPU.
IDLE = (
    "_worker (concurrent/futures/thread.py:81)",
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
)


def split(raw: Path) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if stack and count.isdigit() and not frames[-1].startswith(IDLE):
            counts[layer_of(frames)] += int(count)
    return counts


async def load(server, concurrency: int, seconds: float) -> int:  # type: ignore[no-untyped-def]
    """``concurrency`` streams kept open for ``seconds``; the deltas (token events) received."""
    received = 0
    async with client_for(server) as client:
        for _ in range(3):
            await one_stream(client)
        deadline = time.perf_counter() + seconds

        async def loop(index: int) -> None:
            nonlocal received
            await asyncio.sleep(index * 1.2 / concurrency)
            while time.perf_counter() < deadline:
                arrivals = (await one_stream(client)).arrivals
                received += len(arrivals)  # after the await: += across it would lose counts

        await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return received


@contextlib.contextmanager
def upstream_of(path: str) -> Iterator[tuple[str | None, int | None]]:
    if path == "scripted":
        yield None, None
        return
    with running(TOKENS, FIRST_MS, GAP_MS) as upstream:
        yield upstream


def profile(
    name: str, concurrency: int, seconds: float, py_spy: str, extra: dict[str, str], path: str = "anthropic"
) -> dict:
    factory = ours if name == "ours" else baseline
    with upstream_of(path) as (upstream, upstream_pid):
        SETTINGS.update(extra)  # ours only: the app's settings, e.g. EVI360_ANTHROPIC_HTTP
        with factory(TOKENS, FIRST_MS, GAP_MS, upstream=upstream) as server:
            raw = Path(tempfile.mkdtemp(prefix="evi360-spy-")) / f"{name}.txt"
            before, upstream_before = cpu(server.pid), cpu(upstream_pid) if upstream_pid else 0.0
            record = ["record", "--pid", str(server.pid), "--rate", "250", "--format", "raw"]
            spy = subprocess.Popen(
                [py_spy, *record, "--output", str(raw), "--nonblocking", "--duration", str(int(seconds))],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deltas = asyncio.run(load(server, concurrency, seconds))
            used = cpu(server.pid) - before
            spy.wait(timeout=60)
            upstream_used = cpu(upstream_pid) - upstream_before if upstream_pid else 0.0
    counts = split(raw)
    total = sum(counts.values()) or 1
    per_delta = used / deltas * 1e6
    return {
        "deltas": deltas,
        "cpu_us_per_delta": per_delta,
        "upstream_cpu_share_of_a_core": upstream_used / seconds,
        "layers_us_per_delta": {layer: n / total * per_delta for layer, n in counts.most_common()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", nargs="+", choices=["ours", "baseline"], default=["ours", "baseline"])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--path", choices=["anthropic", "scripted"], default="anthropic", help="model path")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="settings of ours")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    for name in args.server:
        figures = profile(name, args.concurrency, args.seconds, py_spy, extra, args.path)
        print(
            f"{name}: {figures['cpu_us_per_delta']:.0f} µs of server CPU per delta "
            f"({figures['deltas']} deltas, {args.concurrency} streams; the upstream used "
            f"{figures['upstream_cpu_share_of_a_core']:.0%} of a core)"
        )
        for layer, micros in figures["layers_us_per_delta"].items():
            print(f"  {layer:12} {micros:6.0f} µs")


if __name__ == "__main__":
    main()
