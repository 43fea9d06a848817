"""A stand-in of Anthropic's streaming Messages API on loopback, for the real ``anthropic`` SDK.

It runs an HTTP/1.1 server (asyncio, standard library only) in a thread of its own, so sync tests,
async tests and other processes (a daphne under test) can all talk to it through ``base_url``.
Each ``POST /v1/messages`` plays the next queued script:

- ``text_stream(deltas, delay=...)``: the real event sequence (``message_start``,
  ``content_block_start``, ``ping``, one ``content_block_delta``/``text_delta`` per delta,
  ``content_block_stop``, ``message_delta``, ``message_stop``), each event flushed on its own;
- ``overloaded_midstream(deltas)``: some deltas, then an ``error`` event (``overloaded_error``)
  inside the 200 stream;
- ``http_error(529)``: a JSON error before any stream (``x-should-retry: false``);
- ``hang()``: ``message_start`` and then nothing until the client goes away.

It records the requests, when each delta was sent, and whether the client disconnected early.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    529: "Overloaded",
}


@dataclass
class Script:
    kind: str  # "text", "overloaded", "http_error", "hang"
    deltas: list[str] = field(default_factory=list)
    delay: float = 0.0
    first_delay: float = 0.0
    input_tokens: int = 25
    output_tokens: int = 10
    model: str = "claude-sonnet-4-6"
    status: int = 200
    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    retry_after: str | None = None


def text_stream(
    deltas: list[str],
    delay: float = 0.0,
    *,
    first_delay: float = 0.0,
    input_tokens: int = 25,
    output_tokens: int = 10,
    model: str = "claude-sonnet-4-6",
) -> Script:
    return Script("text", list(deltas), delay, first_delay, input_tokens, output_tokens, model)


def overloaded_midstream(deltas_before: list[str], delay: float = 0.0) -> Script:
    return Script("overloaded", list(deltas_before), delay)


def http_error(
    status: int = 529,
    error_type: str = "overloaded_error",
    message: str = "Overloaded",
    retry_after: str | None = None,
) -> Script:
    return Script(
        "http_error", status=status, error_type=error_type, message=message, retry_after=retry_after
    )


def hang() -> Script:
    return Script("hang")


def _message(script: Script, text: str) -> dict[str, Any]:
    return {
        "id": "msg_standin",
        "type": "message",
        "role": "assistant",
        "model": script.model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": script.input_tokens, "output_tokens": script.output_tokens},
    }


class _Disconnected(Exception):
    pass


class AnthropicStandIn:
    def __init__(self, default_script: Callable[[], Script] | None = None) -> None:
        self._default = default_script or (lambda: text_stream(["Hello", " from", " the", " stand-in."]))
        self._scripts: deque[Script] = deque()
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.sent_at: list[tuple[float, str]] = []
        self.disconnected = threading.Event()
        self.cancelled_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AnthropicStandIn:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="anthropic-standin", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(5)
        self._loop = None

    def __enter__(self) -> AnthropicStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting ------------------------------------------------------------------------------

    def enqueue(self, script: Script) -> None:
        with self._lock:
            self._scripts.append(script)

    def _next_script(self) -> Script:
        with self._lock:
            return self._scripts.popleft() if self._scripts else self._default()

    def wait_for_disconnect(self, timeout: float) -> bool:
        return self.disconnected.wait(timeout)

    # --- HTTP -----------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            carried = b""
            while True:  # keep-alive: several requests per connection
                request_line = carried + await reader.readline()
                carried = b""
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method != "POST" or not path.startswith("/v1/messages"):
                    await self._json(
                        writer, 404, {"type": "error", "error": {"type": "not_found_error", "message": path}}
                    )
                    continue
                self.requests.append({"path": path, "headers": headers, "json": json.loads(body or b"{}")})
                request = self.requests[-1]["json"]
                script = self._next_script()
                try:
                    if not request.get("stream") and script.kind == "text":
                        await self._json(writer, 200, _message(script, "".join(script.deltas)))
                        continue
                    carried = await self._play(script, reader, writer)
                except _Disconnected:
                    self.cancelled_count += 1
                    self.disconnected.set()
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: dict[str, Any],
        extra: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(payload).encode()
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            "request-id: req_standin",
        ]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()

    async def _play(
        self, script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes:
        if script.kind == "http_error":
            extra = {"x-should-retry": "false"}
            if script.retry_after:
                extra["retry-after"] = script.retry_after
            await self._json(
                writer,
                script.status,
                {"type": "error", "error": {"type": script.error_type, "message": script.message}},
                extra,
            )
            return b""

        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"request-id: req_standin\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        # A client that goes away shows up as EOF on the reading side, sooner than a failed write.
        eof = asyncio.ensure_future(reader.read(1))

        def gone() -> bool:
            return eof.done() and not eof.cancelled() and eof.result() == b""

        async def send(event: str, data: dict[str, Any]) -> None:
            if gone():
                raise _Disconnected
            payload = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
            writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            try:
                await writer.drain()
            except ConnectionError:
                raise _Disconnected from None

        async def pause(seconds: float) -> None:
            if seconds > 0:
                await asyncio.wait({eof}, timeout=seconds)
                if gone():
                    raise _Disconnected

        try:
            await send(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_standin",
                        "type": "message",
                        "role": "assistant",
                        "model": script.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": script.input_tokens, "output_tokens": 1},
                    },
                },
            )
            if script.kind == "hang":
                await asyncio.wait({eof})
                raise _Disconnected
            await send(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
            await send("ping", {"type": "ping"})
            for index, delta in enumerate(script.deltas):
                await pause(script.first_delay if index == 0 else script.delay)
                await send(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": delta},
                    },
                )
                self.sent_at.append((time.monotonic(), delta))
            if script.kind == "overloaded":
                await send(
                    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                )
            else:
                await send("content_block_stop", {"type": "content_block_stop", "index": 0})
                await send(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": script.output_tokens},
                    },
                )
                await send("message_stop", {"type": "message_stop"})
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            if not eof.done():
                eof.cancel()
                # Wait until it has really stopped reading: the next request is read right after.
                with contextlib.suppress(asyncio.CancelledError):
                    await eof
        # The watcher may have read the first byte of the client's next request: hand it back.
        return eof.result() if eof.done() and not eof.cancelled() else b""
