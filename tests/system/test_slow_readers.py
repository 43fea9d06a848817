"""Readers that never read: they do not slow the answer down for anybody, their answers are
still recorded in full, and the memory they cost the server stays bounded (the event log is
shared; what daphne holds for a stuck connection is at most that answer)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import psutil

from tests.support.browser_models import set_script
from tests.support.live_server import scripted_live_server

TOKENS = 300
WORD = "x" * 200 + " "  # about 70 kB of events per answer


def stuck_reader(base: str, token: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = json.dumps({"query": "Hoe zwaar mag ik tillen?"}).encode()
    sock.sendall(
        b"POST /api/v1/stream/query HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    return sock  # and never read from it


def test_readers_that_never_read_hold_nobody_up(tmp_path):
    script = tmp_path / "script.json"
    set_script(script, deltas=[WORD] * TOKENS, delay=0.005)
    with scripted_live_server(tmp_path, script, EVI360_MAX_CONCURRENT_STREAMS="20") as server:
        token = server.token()
        headers = {"Authorization": f"Bearer {token}"}
        process = psutil.Process(server.process.pid)
        rss_before = process.memory_info().rss
        stuck = [stuck_reader(server.base, token) for _ in range(8)]
        try:
            # Meanwhile an ordinary reader gets its whole answer.
            with httpx.stream(
                "POST",
                f"{server.base}/api/v1/stream/query",
                json={"query": "tillen"},
                headers=headers,
                timeout=60,
            ) as response:
                body = response.read().decode()
            assert body.count("event: token") == TOKENS and "event: done" in body
            # The stuck readers' answers were generated and recorded in full all the same.
            for _ in range(400):
                found = httpx.get(f"{server.base}/api/v1/stream/sessions/", headers=headers).json()["results"]
                if len(found) == 9 and all(s["status"] != "streaming" for s in found):
                    break
                time.sleep(0.05)
            assert [s["status"] for s in found] == ["completed"] * 9
            assert all(len(s["answer"]) == TOKENS * len(WORD) for s in found)
            growth = process.memory_info().rss - rss_before
            # Eight stuck connections, each holding at most its own ~70 kB answer (plus noise).
            assert growth < 32 * 2**20, f"server memory grew by {growth / 2**20:.1f} MiB"
        finally:
            for sock in stuck:
                sock.close()
