"""A worker killed outright (SIGKILL) mid-stream, with two workers sharing the database and the
Redis event log: the reader on the other worker gets a retryable error instead of hanging, the
session becomes `interrupted`, and the next question is answered."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest
import redis

from tests.conftest import redis_test_url
from tests.support.live_server import live_server, sse_events

TEST_DB = redis_test_url(13)
pytestmark = pytest.mark.skipif(TEST_DB is None, reason="no Redis at REDIS_URL's server or 127.0.0.1:6379")


def test_a_killed_worker_s_stream_ends_cleanly_elsewhere(tmp_path):
    redis.Redis.from_url(TEST_DB).flushdb()
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"deltas": ["woord "] * 200, "delay": 0.05}))
    shared = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        "REDIS_URL": TEST_DB,
        "EVI360_MODEL": "python:tests.support.browser_models:scripted",
        "EVI360_TEST_SCRIPT": str(script),
        "EVI360_ORPHAN_CHECK_INTERVAL": "0.5",
        "EVI360_SSE_KEEPALIVE": "0.5",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with live_server(tmp_path / "a", **shared) as one, live_server(tmp_path / "b", **shared) as other:
        headers = {"Authorization": f"Bearer {other.token()}"}
        created = httpx.post(f"{one.base}/api/v1/stream/sessions/", json={"query": "tillen"}, headers=headers)
        assert created.status_code == 201
        events: list[tuple[str, dict]] = []

        def read() -> None:
            with httpx.stream(
                "GET", f"{other.base}{created.json()['events_url']}", headers=headers, timeout=60
            ) as r:
                for event in sse_events(r):
                    events.append(event)  # as each arrives: the test watches the list meanwhile

        reader = threading.Thread(target=read)
        reader.start()
        deadline = time.monotonic() + 30
        while sum(kind == "token" for kind, _ in events) < 3:
            assert time.monotonic() < deadline and reader.is_alive(), events
            time.sleep(0.02)
        one.process.send_signal(signal.SIGKILL)
        one.process.wait()

        reader.join(timeout=60)
        assert not reader.is_alive(), "the reader on the other worker hangs"
        assert events[-1][0] == "error"
        assert events[-1][1]["code"] == "stream_unavailable" and events[-1][1]["retryable"] is True

        session_url = f"{other.base}/api/v1/stream/sessions/{created.json()['session_id']}"
        for _ in range(300):
            status = httpx.get(session_url, headers=headers).json()["status"]
            if status != "streaming":
                break
            time.sleep(0.05)
        assert status == "interrupted"

        script.write_text(json.dumps({"deltas": ["Til ", "niet ", "te ", "zwaar."]}))
        answer = httpx.post(
            f"{other.base}/api/v1/stream/query",
            json={"query": "tillen"},
            headers={**headers, "Accept": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 200 and answer.json()["answer"] == "Til niet te zwaar."
