"""The production-like setup (`make cluster`): two uvicorn workers behind nginx, sharing
PostgreSQL and Redis; a stream started on each worker is resumed on the other, and stopped from
the other. Runs when REDIS_URL and a PostgreSQL DATABASE_URL are set (CI's second
run) and nginx is installed; it uses a database and a Redis database of its own."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support.live_server import ROOT, free_port

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(
    not (DATABASE_URL.startswith(("postgres://", "postgresql://")) and REDIS_URL and Path(NGINX).exists()),
    reason="needs a PostgreSQL DATABASE_URL, REDIS_URL and nginx (CI's second run has them)",
)
USERNAME, PASSWORD = "cluster", "cluster-pass-123456"
SCRAPER, ALLOWED_CLIENT = "10.0.0.1", "127.0.0.3"


@dataclass
class Cluster:
    base: str  # nginx
    workers: list[str]
    process: subprocess.Popen

    def token(self) -> str:
        response = httpx.post(
            f"{self.base}/api/v1/auth/token/", json={"username": USERNAME, "password": PASSWORD}
        )
        return response.json()["access"]


@contextmanager
def running_cluster(run_dir: Path, server: str, workers: int) -> Iterator[Cluster]:
    """deploy/cluster.py with ``workers`` ``server`` workers behind nginx, until the block ends."""
    redis = urlsplit(REDIS_URL)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("EVI360_", "ANTHROPIC_"))},
        "DATABASE_URL": urlunsplit(urlsplit(DATABASE_URL)._replace(path="/evi360_cluster_test")),
        "REDIS_URL": urlunsplit(redis._replace(path="/11")),
        "EVI360_DEMO_USERNAME": USERNAME,
        "EVI360_DEMO_PASSWORD": PASSWORD,
        "EVI360_RATE_LIMIT": "1000/m",
        "EVI360_OFFLINE_TOKEN_DELAY_MS": "30",
        # A scraper elsewhere, and a client on 127.0.0.3 (loopback too, but not nginx's address).
        "EVI360_METRICS_ALLOWED_IPS": f"{SCRAPER},{ALLOWED_CLIENT}",
        "DEBUG": "false",
        "SECRET_KEY": "cluster-" + "x" * 50,
    }
    port, ports = free_port(), [free_port() for _ in range(workers)]
    log = open(run_dir / "cluster.log", "wb")
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "deploy" / "cluster.py"),
            *("--server", server),
            "--port",
            str(port),
            "--run-dir",
            str(run_dir),
            "--worker-ports",
            *map(str, ports),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((run_dir / "cluster.log").read_text())
            time.sleep(0.2)
        yield Cluster(base, [f"http://127.0.0.1:{p}" for p in ports], process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), "uvicorn", 2) as running:
        yield running


@pytest.fixture(scope="module")
def daphne_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster-daphne"), "daphne", 1) as running:
        yield running


def events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, data) pairs as they arrive."""
    event = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            yield event, line[6:]
            event = None


def test_every_worker_and_nginx_answer(cluster):
    for base in [cluster.base, *cluster.workers]:
        assert httpx.get(f"{base}/healthz").status_code == 200
    static = httpx.get(f"{cluster.base}/static/js/chat.js")
    assert static.status_code == 200 and "EventSource" in static.text


def test_nginx_passes_each_event_on_at_once(cluster):
    headers = {"Authorization": f"Bearer {cluster.token()}"}
    with httpx.stream(
        "POST",
        f"{cluster.base}/api/v1/stream/query",
        json={"query": "Hoe zwaar mag ik tillen?"},
        headers=headers,
    ) as response:
        assert response.status_code == 200
        assert "gzip" not in response.headers.get("content-encoding", "")
        session_id, status_at_first_token, kinds = None, None, []
        for kind, data in events(response):
            kinds.append(kind)
            if kind == "session":
                session_id = httpx.Response(200, content=data).json()["session_id"]
            if kind == "token" and status_at_first_token is None:
                # Had nginx buffered the response, the first token would arrive with the last.
                session = httpx.get(f"{cluster.base}/api/v1/stream/sessions/{session_id}", headers=headers)
                status_at_first_token = session.json()["status"]
    assert status_at_first_token == "streaming"
    assert kinds[-1] == "done" and kinds.count("token") > 5


@pytest.mark.parametrize("order", ["first-then-second", "second-then-first"])
def test_a_stream_started_on_one_worker_resumes_on_the_other(cluster, order):
    one, other = cluster.workers if order == "first-then-second" else cluster.workers[::-1]
    headers = {"Authorization": f"Bearer {cluster.token()}"}
    created = httpx.post(
        f"{one}/api/v1/stream/sessions/", json={"query": "Hoe zwaar mag ik tillen?"}, headers=headers
    )
    assert created.status_code == 201
    url = created.json()["events_url"]
    # Read a few events where it started, then the connection drops.
    seen = []
    with httpx.stream("GET", f"{one}{url}", headers=headers) as response:
        for kind, data in events(response):
            seen.append((kind, data))
            if len(seen) == 5:
                break
    # EventSource reconnects with Last-Event-ID, and reaches the other worker.
    with httpx.stream("GET", f"{other}{url}", headers={**headers, "Last-Event-ID": "4"}) as response:
        assert response.status_code == 200
        rest = list(events(response))
    assert rest[-1][0] == "done"
    # The same events as a reader that read it whole on either worker.
    for base in (one, other, cluster.base):
        whole = httpx.get(f"{base}{url}", headers=headers, timeout=30)
        assert list(events(whole)) == seen + rest


def test_delete_on_the_other_worker_stops_the_stream(cluster):
    one, other = cluster.workers
    headers = {"Authorization": f"Bearer {cluster.token()}"}
    created = httpx.post(
        f"{one}/api/v1/stream/sessions/", json={"query": "Hoe zwaar mag ik tillen?"}, headers=headers
    )
    session_url = f"/api/v1/stream/sessions/{created.json()['session_id']}"
    with httpx.stream("GET", f"{other}{created.json()['events_url']}", headers=headers) as response:
        kinds = []
        for kind, _ in events(response):
            kinds.append(kind)
            if kind == "token" and kinds.count("token") == 3:  # once, not again on a citation
                stop = httpx.delete(f"{other}{session_url}", headers=headers)
                assert stop.status_code == 202
    assert "done" not in kinds  # it ended early
    for _ in range(100):
        status = httpx.get(f"{cluster.base}{session_url}", headers=headers).json()["status"]
        if status != "streaming":
            break
        time.sleep(0.1)
    assert status == "cancelled"
    assert httpx.delete(f"{one}{session_url}", headers=headers).status_code == 409


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_metrics_refuse_a_spoofed_forwarded_address_through_nginx(server, request):
    """nginx on loopback is the one trusted proxy: what a client writes in X-Forwarded-For does
    not make it the allowed scraper (daphne's --proxy-headers believed the leftmost address,
    uvicorn's the one left of nginx's), while an allowed client's own address lets it in."""
    running = request.getfixturevalue("cluster" if server == "uvicorn" else "daphne_cluster")
    for spoof in (SCRAPER, f"{SCRAPER}, {SCRAPER}", ALLOWED_CLIENT):
        spoofed = httpx.get(f"{running.base}/metrics", headers={"X-Forwarded-For": spoof})
        assert spoofed.status_code == 403, spoof
        assert spoofed.json()["error"]["code"] == "forbidden"
    # Sent from 127.0.0.3 (an allowed address), the header still counts for nothing.
    allowed = httpx.Client(transport=httpx.HTTPTransport(local_address=ALLOWED_CLIENT))
    with allowed:
        response = allowed.get(f"{running.base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 200 and b"evi360_streams_active" in response.content
