"""Streams per core: the app under daphne and under uvicorn, one worker process each, and
`make cluster` (two uvicorn workers behind nginx on PostgreSQL and Redis: ``--servers cluster``).

    .venv/bin/python bench/servers.py [--concurrency 200] [--tokens 100] [--gap-ms 20]

A scripted model (tests/support/browser_models.py) answers every question with ``--tokens`` tokens, one
every ``--gap-ms`` ms, so each stream lasts ``tokens * gap``. For each server and concurrency the
load generator (this process, bench/sse_client.py: it shares the 2 cores) runs that many streams at once through the
real path (JWT, rate limit, retrieval, the stream log) and reports:

- the server's CPU time per stream (psutil: the server processes only, nginx included for the
  cluster) and from it the streams one core sustains: stream duration / CPU per stream;
- time to first token minus the model's own (p50/p95) and the gap between tokens (p50/p99), as
  the client sees them.

A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.suite import Server, client_for, one_stream, percentile  # noqa: E402
from tests.support.live_server import free_port, live_server  # noqa: E402


def cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in processes)


async def level(base: str, token: str, concurrency: int, pids: list[int]) -> dict[str, float]:
    server = Server("ours", f"{base}/api/v1/stream/query", {"Authorization": f"Bearer {token}"}, pids[0])
    async with client_for(server) as client:
        for _ in range(4):  # warm-up, reaching every worker of a cluster
            await one_stream(client)
        processes = [psutil.Process(pid) for pid in pids]
        cpu_before = cpu_seconds(processes)
        wall = time.perf_counter()
        results = await asyncio.gather(*(one_stream(client) for _ in range(concurrency)))
        wall = time.perf_counter() - wall
        cpu = cpu_seconds(processes) - cpu_before
    ttfts = [r.ttft for r in results]
    gaps = [g for r in results for g in r.gaps]
    return {"concurrency": concurrency, "cpu_s": cpu, "wall_s": wall, "ttft": ttfts, "gaps": gaps}


@contextlib.contextmanager
def server_for(name: str, workdir: Path, **settings: str) -> Iterator[tuple[str, str, list[int]]]:
    """(base URL, access token, server pids) of one daphne or uvicorn worker, or of `make
    cluster`'s two uvicorn workers behind nginx (on PostgreSQL database evi360_bench and Redis)."""
    if name != "cluster":
        with live_server(workdir, asgi_server=name, **settings) as server:
            yield server.base, server.token(), [server.process.pid]
        return
    # Free ports for the workers too: the ports right after nginx's may be taken (by the load
    # generator's own connections: free_port() hands out ports from the ephemeral range).
    port, worker_ports = free_port(), [free_port(), free_port()]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("EVI360_", "DATABASE_URL", "REDIS_URL"))},
        "DATABASE_URL": os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evi360_bench"
        ),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        "EVI360_DEMO_USERNAME": "bench",
        "EVI360_DEMO_PASSWORD": "bench-pass-123456",
        **settings,
    }
    log_path = workdir / "cluster.log"
    log = open(log_path, "wb")  # closed in the finally below
    cluster = subprocess.Popen(
        [
            *(sys.executable, str(ROOT / "deploy" / "cluster.py"), "--port", str(port)),
            *("--worker-ports", *map(str, worker_ports), "--run-dir", str(workdir)),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            if cluster.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(
                    "make cluster did not start (PostgreSQL, Redis and nginx needed): " + " | ".join(tail)
                )
            time.sleep(0.2)
        token = httpx.post(
            f"{base}/api/v1/auth/token/", json={"username": "bench", "password": "bench-pass-123456"}
        ).json()["access"]
        workers = [
            p.pid for p in psutil.Process(cluster.pid).children() if "evi360.asgi:application" in p.cmdline()
        ]
        nginx = [p.pid for p in psutil.Process(cluster.pid).children(recursive=True) if "nginx" in p.name()]
        yield base, token, workers + nginx
    finally:
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(timeout=60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--servers", nargs="+", default=["daphne", "uvicorn"], help="daphne, uvicorn, cluster"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[200])
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    gap = args.gap_ms / 1000
    stream_seconds = args.tokens * gap
    rows = []
    for server_name in args.servers:
        workdir = Path(tempfile.mkdtemp(prefix=f"evi360-bench-{server_name}-"))
        script = workdir / "script.json"
        # The scripted model's first token comes at once; every next one `gap` later.
        script.write_text(json.dumps({"deltas": ["woord "] * args.tokens, "delay": gap}))
        with server_for(
            server_name,
            workdir,
            EVI360_MODEL="python:tests.support.browser_models:scripted",
            EVI360_TEST_SCRIPT=str(script),
            EVI360_RATE_LIMIT="100000/m",
            EVI360_MAX_CONCURRENT_STREAMS="10000",
            LOG_LEVEL="WARNING",
        ) as (base, token, pids):
            for concurrency in args.concurrency:
                result = asyncio.run(level(base, token, concurrency, pids))
                cpu_per_stream = result["cpu_s"] / concurrency
                row = {
                    "server": server_name,
                    "concurrency": concurrency,
                    "cpu_ms_per_stream": round(cpu_per_stream * 1000, 1),
                    "streams_per_core": round(stream_seconds / cpu_per_stream),
                    "ttft_p50_ms": round(percentile(result["ttft"], 50) * 1000, 1),
                    "ttft_p95_ms": round(percentile(result["ttft"], 95) * 1000, 1),
                    "gap_p50_ms": round(percentile(result["gaps"], 50) * 1000, 1),
                    "gap_p99_ms": round(percentile(result["gaps"], 99) * 1000, 1),
                }
                rows.append(row)
                print(
                    f"{server_name:>8} {concurrency:>4} streams: {row['cpu_ms_per_stream']:>6} ms CPU/stream "
                    f"→ {row['streams_per_core']:>4} streams/core; TTFT p50 {row['ttft_p50_ms']} / "
                    f"p95 {row['ttft_p95_ms']} ms; gap p50 {row['gap_p50_ms']} / p99 {row['gap_p99_ms']} ms "
                    f"(model: {args.gap_ms:g} ms)",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
