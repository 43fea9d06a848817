"""The streaming benchmark: our app (uvicorn, as deployed; ``--server daphne`` to compare) against
the baseline users would otherwise write (bench/baseline_fastapi.py), the same scripted model behind both
(bench/scripted_model.py), real servers on loopback. Prints a table with ratios (ours / baseline,
lower is better) and writes it to bench/results/latest.json.

    .venv/bin/python bench/suite.py [--concurrency 1 50 200 500] [--server uvicorn] [--quick]

- TTFT overhead: first token received minus the model's own first-token delay (50 ms), and the
  gap between tokens (the model's is 20 ms), at each concurrency; 60-token answers. Ours runs with
  JWT, rate limiting, retrieval and the stream log, as in production.
- Server CPU per token, zero-delay model, 2,000-token answers (relay cost: the server's CPU time
  from psutil, divided by tokens); the model library's own share measured in-process
  (through the API each server uses).
- Long answers (2,000 and 10,000 tokens, zero delay): time to stream end to end and peak RSS.
- Memory: server RSS after 50 and after 500 consecutive streams (1,000 before 2026-12-04).
- Capacity: the most concurrent streams one worker process holds (kept open all the time, each
  client starting a new stream when its last one ends) with the gap p99 under 100 ms and the
  TTFT p95 under 500 ms (doubling, then bisecting to within 15 %); and the same for
  `make cluster` (two workers behind nginx, PostgreSQL, Redis) with --cluster, when those are available.

The load generator runs in this process and shares the machine's cores with the servers; it is
bench/sse_client.py (a few µs of CPU per event, where httpx spent ~290 µs and, at 500 streams,
more CPU than either server). A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sse_client import Client, Result, StreamError  # noqa: E402
from tests.support.live_server import free_port, live_server  # noqa: E402

QUESTION = "Hoe zwaar mag ik tillen?"
MODEL = "claude-sonnet-4-6"
FIRST_MS, GAP_MS, TOKENS = 50.0, 20.0, 60


@dataclass
class Server:
    name: str
    url: str  # the streaming endpoint
    headers: dict[str, str]
    pid: int


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else float("nan")


SETTINGS = {
    "EVI360_MODEL": "python:bench.scripted_model:model",
    "EVI360_RATE_LIMIT": "1000000/m",
    "EVI360_MAX_CONCURRENT_STREAMS": "100000",
    "EVI360_STREAM_TIMEOUT": "600",
    "LOG_LEVEL": "WARNING",
}
# Bursts per concurrency (and server): one stream is noisy, 500 take the machine for seconds.
# Both paths must fit `make bench` into 12 minutes on 2 cores.
ROUNDS = {"scripted": {1: 16, 50: 4, 200: 2, 500: 1}, "anthropic": {1: 12, 50: 4, 200: 2, 500: 1}}
STARTED = time.monotonic()
ASGI_SERVER = "uvicorn"  # as deployed (`make run`, `make cluster`); --server daphne to compare


def _schedule(tokens: int, first_ms: float, gap_ms: float) -> dict[str, str]:
    return {"BENCH_TOKENS": str(tokens), "BENCH_FIRST_MS": str(first_ms), "BENCH_GAP_MS": str(gap_ms)}


def _upstream_settings(upstream: str | None) -> dict[str, str]:
    """Ours on the real path: Claude through the anthropic SDK, at bench/upstream.py."""
    if upstream is None:
        return {}
    return {
        "EVI360_MODEL": f"anthropic:{MODEL}",
        "ANTHROPIC_API_KEY": "bench",
        "ANTHROPIC_BASE_URL": upstream,
    }


@contextlib.contextmanager
def ours(tokens: int, first_ms: float, gap_ms: float, upstream: str | None = None) -> Iterator[Server]:
    workdir = Path(tempfile.mkdtemp(prefix="evi360-suite-"))
    settings = {**SETTINGS, **_schedule(tokens, first_ms, gap_ms), **_upstream_settings(upstream)}
    with live_server(workdir, asgi_server=ASGI_SERVER, **settings) as server:
        headers = {"Authorization": f"Bearer {server.token()}"}
        yield Server("ours", f"{server.base}/api/v1/stream/query", headers, server.process.pid)


@contextlib.contextmanager
def cluster(tokens: int, first_ms: float, gap_ms: float) -> Iterator[Server]:
    """`make cluster`: two workers behind nginx on PostgreSQL and Redis (bench/servers.py)."""
    from bench.servers import server_for

    workdir = Path(tempfile.mkdtemp(prefix="evi360-suite-cluster-"))
    with server_for("cluster", workdir, **SETTINGS, **_schedule(tokens, first_ms, gap_ms)) as (
        base,
        token,
        pids,
    ):
        yield Server("cluster", f"{base}/api/v1/stream/query", {"Authorization": f"Bearer {token}"}, pids[0])


@contextlib.contextmanager
def baseline(tokens: int, first_ms: float, gap_ms: float, upstream: str | None = None) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, **_schedule(tokens, first_ms, gap_ms)}
    env.pop("BENCH_UPSTREAM", None)
    if upstream is not None:
        env["BENCH_UPSTREAM"] = upstream
    command = [sys.executable, "-m", "uvicorn", "bench.baseline_fastapi:app", "--port", str(port)]
    process = subprocess.Popen([*command, "--no-access-log", "--log-level", "warning"], env=env, cwd=ROOT)
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            time.sleep(0.1)
        yield Server("baseline", f"http://127.0.0.1:{port}/stream", {}, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def client_for(server: Server) -> Client:
    return Client(server.url, server.headers)


_ASKED = itertools.count()


async def one_stream(client: Client) -> Result:
    """One question; its token events' arrival times. Each stream's question differs (a number
    at its end), so ours embeds every one: its cache of recent questions' vectors stays cold."""
    result = await client.stream({"query": f"{QUESTION} ({next(_ASKED)})"})
    if not result.arrivals:
        raise StreamError("no token event")
    return result


def cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@contextlib.contextmanager
def rss_peak(pid: int) -> Iterator[Callable[[], int]]:
    """The highest RSS of ``pid`` while the block runs (sampled every 20 ms)."""
    process = psutil.Process(pid)
    peak = process.memory_info().rss
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.02):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: peak
    finally:
        stop.set()
        sampler.join()


async def bursts(servers: list[Server], concurrency: int, rounds: int) -> dict[str, dict[str, float]]:
    """``rounds`` bursts of ``concurrency`` streams per server, the servers taking turns (round by
    round, the order swapped every round), so a drift in the machine's speed (noisy neighbours,
    frequency) falls on both alike instead of on whichever ran second."""
    clients = {server.name: client_for(server) for server in servers}
    results: dict[str, list[Result]] = {server.name: [] for server in servers}
    errors = dict.fromkeys(results, 0)
    used = dict.fromkeys(results, 0.0)
    growth = dict.fromkeys(results, 0)
    try:
        for server in servers:
            for _ in range(3):
                await one_stream(clients[server.name])  # warm-up
        for round_ in range(rounds):
            for server in servers if round_ % 2 == 0 else servers[::-1]:
                before, rss_before = cpu(server.pid), psutil.Process(server.pid).memory_info().rss
                with rss_peak(server.pid) as peak:
                    done = await asyncio.gather(
                        *(one_stream(clients[server.name]) for _ in range(concurrency)),
                        return_exceptions=True,
                    )
                used[server.name] += cpu(server.pid) - before
                growth[server.name] = max(growth[server.name], peak() - rss_before)
                # A connection refused or reset (the kernel's queues overflowing, a keep-alive
                # connection the server closed as the client reused it) fails its stream, not the run.
                failed = [r for r in done if isinstance(r, StreamError)]
                if len(failed) < len([r for r in done if isinstance(r, BaseException)]):
                    raise next(r for r in done if isinstance(r, BaseException) and r not in failed)
                errors[server.name] += len(failed)
                results[server.name] += [r for r in done if not isinstance(r, BaseException)]
    finally:
        for client in clients.values():
            client.close()
    figures = {}
    for name, done in results.items():
        if errors[name]:
            print(f"    {name}: {errors[name]} of {rounds * concurrency} streams failed", flush=True)
        overhead = [r.ttft * 1000 - FIRST_MS for r in done]
        gaps = [g * 1000 for r in done for g in r.gaps]
        figures[name] = {
            "ttft_overhead_p50_ms": percentile(overhead, 50),
            "ttft_overhead_p95_ms": percentile(overhead, 95),
            "ttft_overhead_p99_ms": percentile(overhead, 99),
            "gap_p50_ms": percentile(gaps, 50),
            "gap_p99_ms": percentile(gaps, 99),
            "cpu_ms_per_stream": used[name] / len(done) * 1000,
            "failed_streams": errors[name],
        }
        if concurrency >= 10:
            # What an open stream costs in memory: the peak while a burst's streams were all open,
            # over the RSS before it. (With one stream open it is the allocator's noise instead.)
            figures[name]["rss_kib_per_open_stream"] = growth[name] / 1024 / concurrency
    return figures


async def sequential(server: Server, count: int) -> dict[str, float]:
    """``count`` streams one after another: wall time, server CPU, peak RSS meanwhile."""
    async with client_for(server) as client:
        await one_stream(client)
        before, started, tokens = cpu(server.pid), time.perf_counter(), 0
        with rss_peak(server.pid) as peak:
            for _ in range(count):
                tokens += len((await one_stream(client)).arrivals)
        wall = time.perf_counter() - started
        used = cpu(server.pid) - before
    return {
        "seconds_per_stream": wall / count,
        "cpu_us_per_token": used / tokens * 1e6,
        "peak_rss_mib": peak() / 2**20,
        "rss_mib": psutil.Process(server.pid).memory_info().rss / 2**20,
    }


# Our server keeps nothing of a finished stream once its replay is in the database; at rest is
# after the last streams' closing work (and the in-process fallback's 5 s compaction).
AT_REST_AFTER = 6.0


async def rss_after(server: Server, counts: tuple[int, ...]) -> dict[str, float]:
    """RSS right after ``counts`` streams (10 at a time), and at rest: ``AT_REST_AFTER`` seconds
    later, when what the last streams left behind has been compacted or freed."""
    process = psutil.Process(server.pid)
    result, done = {}, 0
    async with client_for(server) as client:
        for count in counts:
            while done < count:
                await asyncio.gather(*(one_stream(client) for _ in range(10)))
                done += 10
            result[f"rss_after_{count}_mib"] = process.memory_info().rss / 2**20
            await asyncio.sleep(AT_REST_AFTER)
            result[f"rss_at_rest_after_{count}_mib"] = process.memory_info().rss / 2**20
    return result


def library_cpu_per_token(tokens: int = 5000) -> dict[str, float]:
    """CPU per token of Pydantic AI alone on the zero-delay model, in-process, through the API
    each server uses: ours the direct API (``model_request_stream``), the baseline ``run_stream``
    + ``stream_text(delta=True, debounce_by=None)``."""
    os.environ.update(BENCH_TOKENS=str(tokens), BENCH_FIRST_MS="0", BENCH_GAP_MS="0")
    from pydantic_ai import Agent
    from pydantic_ai.direct import model_request_stream
    from pydantic_ai.messages import ModelRequest

    from bench.scripted_model import model

    scripted = model()
    agent = Agent(scripted)

    async def direct() -> None:
        async with model_request_stream(scripted, [ModelRequest.user_text_prompt(QUESTION)]) as response:
            async for _ in response:
                pass

    async def run_stream() -> None:
        async with agent.run_stream(QUESTION) as result:
            async for _ in result.stream_text(delta=True, debounce_by=None):
                pass

    figures = {}
    for name, run in (("ours", direct), ("baseline", run_stream)):
        asyncio.run(run())
        started = time.process_time()
        asyncio.run(run())
        figures[name] = (time.process_time() - started) / tokens * 1e6
    return figures


def passes(figures: dict[str, float]) -> bool:
    print(
        f"    {figures['concurrency']:.0f} held: TTFT overhead p95 {figures['ttft_overhead_p95_ms']:.0f} ms, "
        f"gap p99 {figures['gap_p99_ms']:.0f} ms",
        flush=True,
    )
    if figures.get("errors"):
        print(f"    {figures['errors']:.0f} streams failed (connection refused or reset)", flush=True)
        return False
    return figures["gap_p99_ms"] < 100 and figures["ttft_overhead_p95_ms"] + FIRST_MS < 500


async def sustained(server: Server, concurrency: int, seconds: float = 3.0) -> dict[str, float]:
    """``concurrency`` streams open all the time for ``seconds``: each client starts its next
    stream when its last one ends, the first starts spread over one stream's length (steady load,
    not a burst). Figures over the streams started after that ramp."""
    stream_s = (FIRST_MS + GAP_MS * (TOKENS - 1)) / 1000
    results: list[Result] = []
    errors = 0
    async with client_for(server) as client:
        for _ in range(3):
            await one_stream(client)  # warm-up
        started = time.perf_counter()
        ramp_end, deadline = started + stream_s, started + stream_s + seconds

        async def loop(index: int) -> None:
            await asyncio.sleep(index * stream_s / concurrency)
            nonlocal errors
            while (now := time.perf_counter()) < deadline:
                try:
                    result = await one_stream(client)
                except StreamError:  # refused, reset or failed: this level is not held
                    errors += 1
                    return
                if now >= ramp_end:
                    results.append(result)

        await asyncio.gather(*(loop(i) for i in range(concurrency)))
    overhead = [r.ttft * 1000 - FIRST_MS for r in results]
    gaps = [g * 1000 for r in results for g in r.gaps]
    return {
        "concurrency": concurrency,
        "streams": len(results),
        "errors": errors,
        "ttft_overhead_p95_ms": percentile(overhead, 95),
        "gap_p99_ms": percentile(gaps, 99),
    }


async def capacity(server: Server, start: int = 50, limit: int = 2000) -> dict[str, float]:
    """The most streams kept open at once (60 tokens, one every 20 ms, each client starting its
    next when one ends) with gap p99 < 100 ms and TTFT p95 < 500 ms: doubling from ``start``,
    then bisecting to within 15 %."""
    good, bad, concurrency = 0, 0, start
    while concurrency <= limit:
        if passes(await sustained(server, concurrency)):
            good, concurrency = concurrency, concurrency * 2
        else:
            bad = concurrency
            break
    if good == 0 and bad:  # below the start: bisect from 1
        good = 1
    while bad and bad - good > max(5, good // 7):
        middle = (good + bad) // 2
        if passes(await sustained(server, middle)):
            good = middle
        else:
            bad = middle
    return {"capacity_streams": good}


PATHS = ("scripted", "anthropic")
PATH_NAMES = {"scripted": "scripted model", "anthropic": "real Anthropic SDK"}


@contextlib.contextmanager
def upstream_for(path: str, tokens: int, first_ms: float, gap_ms: float) -> Iterator[str | None]:
    """The Messages API upstream of the real path (bench/upstream.py), None for the scripted one."""
    if path == "scripted":
        yield None
        return
    from bench.upstream import running

    with running(tokens, first_ms, gap_ms) as (base_url, _pid):
        yield base_url


def both(path: str, schedule: tuple[int, float, float]) -> Iterator[Server]:
    with upstream_for(path, *schedule) as upstream:
        for factory in (ours, baseline):
            with factory(*schedule, upstream=upstream) as server:
                yield server


def run_path(path: str, args: argparse.Namespace, record: Callable[[str, str, dict], None]) -> None:
    """Every figure of one path: the scripted model, or the real Anthropic SDK against the
    Messages API stand-in. The real path leaves out the 10,000-token answer and the memory runs
    (what they measure does not depend on the model library)."""
    print(f"{PATH_NAMES[path]} ({time.monotonic() - STARTED:.0f} s in):", flush=True)
    schedule = (TOKENS, FIRST_MS, GAP_MS)
    with upstream_for(path, *schedule) as upstream:
        with ours(*schedule, upstream=upstream) as mine, baseline(*schedule, upstream=upstream) as theirs:
            for concurrency in args.concurrency:
                rounds = ROUNDS[path].get(concurrency, 1) if not args.quick else 2 if concurrency < 500 else 1
                print(f"  {concurrency} concurrent streams, {rounds} rounds each, taking turns …", flush=True)
                for name, values in asyncio.run(bursts([mine, theirs], concurrency, rounds)).items():
                    record(f"{path}: {concurrency} concurrent", name, values)
    for tokens in (2000, 10000) if path == "scripted" else (2000,):
        for server in both(path, (tokens, 0, 0)):
            print(f"  {server.name}: {tokens}-token answers …", flush=True)
            record(
                f"{path}: {tokens}-token answer",
                server.name,
                asyncio.run(sequential(server, 2 if args.quick else 3)),
            )
    if path == "scripted":
        counts = (50, 200) if args.quick else (50, 500)
        for server in both(path, (TOKENS, 0, 0)):
            print(f"  {server.name}: {counts[-1]} streams for memory …", flush=True)
            record(f"{path}: memory", server.name, asyncio.run(rss_after(server, counts)))
    for server in both(path, schedule):
        print(f"  {server.name}: capacity …", flush=True)
        record(f"{path}: capacity (one worker)", server.name, asyncio.run(capacity(server)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50, 200, 500])
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS), help="model paths")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn", help="ours under")
    # `make bench` leaves it out to fit its 12 minutes; `make cluster`'s capacity: --cluster.
    parser.add_argument("--cluster", action="store_true", help="also the multi-worker capacity")
    parser.add_argument("--no-cluster", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument("--quick", action="store_true", help="fewer rounds and streams: a smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args()
    global ASGI_SERVER
    ASGI_SERVER = args.server
    started = time.monotonic()
    figures: dict[str, dict[str, dict[str, float]]] = {}

    def record(section: str, name: str, values: dict[str, float]) -> None:
        figures.setdefault(section, {}).setdefault(name, {}).update(values)

    for path in args.paths:
        run_path(path, args, record)
    if args.cluster and "scripted" in args.paths:
        try:
            with cluster(TOKENS, FIRST_MS, GAP_MS) as server:
                print("  cluster (2 workers, scripted model): capacity …", flush=True)
                record(
                    "scripted: capacity (make cluster, 2 workers)",
                    "ours",
                    asyncio.run(capacity(server, start=100)),
                )
        except RuntimeError as exc:  # no PostgreSQL, Redis or nginx here
            print(f"  cluster skipped: {exc}", flush=True)
    library = library_cpu_per_token() if "scripted" in args.paths else {}

    print_table(figures, library)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "server": ASGI_SERVER,
                "machine": {
                    "cpus": os.cpu_count(),
                    "cpu": _cpu_model(),
                    "python": platform.python_version(),
                    "date": time.strftime("%Y-%m-%d"),
                },
                "library_cpu_us_per_token": library,
                "figures": figures,
                "seconds": round(time.monotonic() - started),
            },
            indent=2,
        )
    )
    print(f"\n{round(time.monotonic() - started)} s; written to {args.out}")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def print_table(figures: dict[str, dict[str, dict[str, float]]], library: dict[str, float]) -> None:
    print(f"\n{'':28}{'ours':>12}{'baseline':>12}{'ratio':>8}")
    for section, servers in figures.items():
        print(section)
        for key in servers["ours"]:
            mine, theirs = servers["ours"][key], servers.get("baseline", {}).get(key, float("nan"))
            ratio = mine / theirs if theirs and theirs > 0 and mine > 0 else float("nan")
            print(f"  {key:26}{mine:12.1f}{theirs:12.1f}{ratio:8.2f}")
    print("(ratio = ours / baseline: lower is better, except capacity, where higher is)")
    for name, api in (("ours", "direct API"), ("baseline", "run_stream + stream_text")):
        if "scripted: 2000-token answer" not in figures:
            break
        relay = figures["scripted: 2000-token answer"][name]["cpu_us_per_token"]
        print(
            f"relay cost, {name}: Pydantic AI ({api}) + the scripted model {library[name]:.0f} µs CPU per "
            f"token; the server in all {relay:.0f} µs, so the server outside the library ≈ "
            f"{relay - library[name]:.0f} µs per token"
        )
    if "anthropic: 2000-token answer" in figures:
        for name in ("ours", "baseline"):
            per_delta = figures["anthropic: 2000-token answer"][name]["cpu_us_per_token"]
            print(f"real path, {name}: {per_delta:.0f} µs of server CPU per upstream delta, SDK included")


if __name__ == "__main__":
    main()
