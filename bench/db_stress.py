"""200 stream starts and ends at once, on SQLite and on PostgreSQL limited to 20 connections.

    .venv/bin/python bench/db_stress.py [--streams 200] [--limit 20]

Each stream writes its session row under the per-user lock at the start, retrieves sources, and
writes its outcome and citations at the end (the offline model answers at once). PostgreSQL's
cap is set on a database of its own (`CREATE DATABASE … CONNECTION LIMIT 20`, the same effect as
`max_connections = 20` for this app) so the machine's server needs no restart. Reports, per
database: streams completed, refusals by code, streams that ended in an error event, sessions left
`streaming`, the peak of PostgreSQL connections seen, and the wall time. A benchmark reports
figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.live_server import live_server  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "evi360_db_stress"


def prepare_postgres(limit: int) -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {PG_DATABASE} CONNECTION LIMIT {limit}")
    except Exception as exc:  # no PostgreSQL here: report SQLite only
        print(f"PostgreSQL skipped: {exc}")
        return None
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DATABASE}"


def watch_connections(stop: threading.Event, peak: list[int]) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        while not stop.wait(0.02):
            (count,) = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [PG_DATABASE]
            ).fetchone()
            peak[0] = max(peak[0], count)


async def one(client: httpx.AsyncClient, base: str, token: str) -> str:
    """How the stream ended: 'done', 'error:<code>' or 'http:<status>:<code>'."""
    async with client.stream(
        "POST",
        f"{base}/api/v1/stream/query",
        json={"query": "Hoe zwaar mag ik tillen?"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        if response.status_code != 200:
            body = json.loads(await response.aread())
            return f"http:{response.status_code}:{body['error']['code']}"
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "error":
                return f"error:{json.loads(line[6:])['code']}"
        return kind


async def burst(base: str, token: str, streams: int) -> collections.Counter[str]:
    limits = httpx.Limits(max_connections=streams + 5, max_keepalive_connections=streams + 5)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        return collections.Counter(await asyncio.gather(*(one(client, base, token) for _ in range(streams))))


def run(label: str, streams: int, **settings: str) -> None:
    peak, stop = [0], threading.Event()
    with live_server(
        Path(tempfile.mkdtemp(prefix="evi360-dbstress-")),
        EVI360_OFFLINE_TOKEN_DELAY_MS="0",
        EVI360_RATE_LIMIT="1000000/m",
        EVI360_MAX_CONCURRENT_STREAMS=str(streams * 2),
        LOG_LEVEL="WARNING",
        **settings,
    ) as server:
        token = server.token()
        watcher = None
        if "DATABASE_URL" in settings:
            watcher = threading.Thread(target=watch_connections, args=(stop, peak), daemon=True)
            watcher.start()
        started = time.perf_counter()
        outcomes = asyncio.run(burst(server.base, token, streams))
        wall = time.perf_counter() - started
        stop.set()
        headers = {"Authorization": f"Bearer {token}"}
        left = httpx.get(
            f"{server.base}/api/v1/stream/sessions/", params={"status": "streaming"}, headers=headers
        ).json()["count"]
    connections = f", peak PostgreSQL connections {peak[0]}" if watcher else ""
    print(
        f"{label}: {streams} streams at once in {wall:.1f} s: {dict(outcomes)}; "
        f"left streaming: {left}{connections}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--limit", type=int, default=20, help="PostgreSQL connection limit")
    args = parser.parse_args()
    run("SQLite", args.streams)
    if url := prepare_postgres(args.limit):
        run(f"PostgreSQL (connection limit {args.limit})", args.streams, DATABASE_URL=url)


if __name__ == "__main__":
    main()
