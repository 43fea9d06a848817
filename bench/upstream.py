"""The real path's upstream: the tests' Messages API stand-in (tests/support/anthropic_standin.py)
in a process of its own, answering every request with the benchmark's schedule, so both servers
stream through the real ``anthropic`` SDK as they would from Claude.

    BENCH_TOKENS=60 BENCH_FIRST_MS=50 BENCH_GAP_MS=20 .venv/bin/python bench/upstream.py

Prints its port on the first line of stdout, then serves until stdin closes or SIGTERM. The deltas
are bench/scripted_model.py's (a citation marker every 20), each its own ``content_block_delta``.
It runs in its own process so that its CPU is not counted as either server's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scripted_model import schedule, tokens_of  # noqa: E402
from tests.support.anthropic_standin import AnthropicStandIn, text_stream  # noqa: E402


def main() -> None:
    tokens, first, gap = schedule()
    deltas = tokens_of(tokens)
    upstream = AnthropicStandIn(
        lambda: text_stream(deltas, delay=gap, first_delay=first, output_tokens=tokens), record=False
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with upstream:
        print(upstream.port, flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()


@contextlib.contextmanager
def process(script: Path, schedule: tuple[int, float, float], *args: str) -> Iterator[tuple[int, int]]:
    """``(port, pid)`` of a bench upstream ``script`` run with this schedule, which prints its port
    on its first line and ends when its stdin closes (or at SIGTERM); stopped on exit."""
    tokens, first_ms, gap_ms = schedule
    env = {"BENCH_TOKENS": str(tokens), "BENCH_FIRST_MS": str(first_ms), "BENCH_GAP_MS": str(gap_ms)}
    child = subprocess.Popen(
        [sys.executable, str(script), *args],
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield int(child.stdout.readline()), child.pid
    finally:
        child.terminate()
        child.wait(timeout=10)


@contextlib.contextmanager
def running(tokens: int, first_ms: float, gap_ms: float) -> Iterator[tuple[str, int]]:
    """``(base_url, pid)`` of an upstream process with this schedule, stopped on exit."""
    with process(Path(__file__), (tokens, first_ms, gap_ms)) as (port, pid):
        yield f"http://127.0.0.1:{port}", pid


if __name__ == "__main__":
    main()
