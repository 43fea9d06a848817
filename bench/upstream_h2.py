"""The Messages API upstream over HTTP/2 (cleartext, prior knowledge), for the HTTP/2 lever of
bench/sdk_layers.py: the same events as bench/upstream.py, served by Hypercorn (h2).

    BENCH_TOKENS=600 BENCH_GAP_MS=2 .venv/bin/python bench/upstream_h2.py

Prints its port on the first line of stdout, then serves until stdin closes. ``h2`` and
``hypercorn`` come with the bench extra (the lever was measured and not taken: docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scripted_model import schedule, tokens_of  # noqa: E402
from bench.upstream import process  # noqa: E402


def events(deltas: list[str]) -> tuple[bytes, list[bytes], bytes]:
    """The stream as the Messages API sends it: its opening, one event per delta, its end."""

    def event(name: str, data: dict) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    usage = {"input_tokens": 25, "output_tokens": 1}
    message = {"id": "msg_h2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6"}
    message |= {"content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    opening = event("message_start", {"type": "message_start", "message": message})
    block = {"type": "text", "text": ""}
    opening += event(
        "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    )
    body = [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        )
        for text in deltas
    ]
    end = event("content_block_stop", {"type": "content_block_stop", "index": 0})
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    end += event(
        "message_delta", {"type": "message_delta", "delta": stop, "usage": {"output_tokens": len(deltas)}}
    )
    end += event("message_stop", {"type": "message_stop"})
    return opening, body, end


async def serve(port: int) -> None:
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    tokens, first, gap = schedule()
    opening, body, end = events(tokens_of(tokens))

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"request-id", b"req_h2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": opening, "more_body": True})
        for index, chunk in enumerate(body):
            await asyncio.sleep(first if index == 0 else gap)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": end})

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.read(1) or stop.set())
    await hypercorn_serve(app, config, shutdown_trigger=stop.wait)


@contextlib.contextmanager
def running(tokens: int, first_ms: float, gap_ms: float) -> Iterator[str]:
    """The base URL of an HTTP/2 upstream process with this schedule, stopped on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with process(Path(__file__), (tokens, first_ms, gap_ms), str(port)):
        yield f"http://127.0.0.1:{port}"


def main() -> None:
    port = int(sys.argv[1])

    async def run() -> None:
        server = asyncio.ensure_future(serve(port))
        for _ in range(100):  # ready when it accepts a connection
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            await asyncio.sleep(0.05)
        print(port, flush=True)
        await server

    asyncio.run(run())


if __name__ == "__main__":
    main()
