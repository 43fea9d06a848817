"""A stand-in of Anthropic's streaming Messages API on loopback, for the real ``anthropic`` SDK.

It runs an HTTP/1.1 server (asyncio, standard library only) on an event loop in a thread of its
own, so sync tests, async tests and other processes (a daphne under test) can all talk to it
through ``base_url``. Each ``POST /v1/messages`` plays the next queued script, or the default one:

- ``text_stream(deltas, delay=...)``: the real event sequence (``message_start``,
  ``content_block_start``, ``ping``, one ``content_block_delta``/``text_delta`` per delta,
  ``content_block_stop``, ``message_delta``, ``message_stop``), each event flushed on its own;
- ``overloaded_midstream(deltas)``: some deltas, then an ``error`` event (``overloaded_error``)
  inside the 200 stream, which the SDK raises as a plain ``anthropic.APIStatusError``;
- ``http_error(529)``: a JSON error before any stream, with ``x-should-retry: false`` so the SDK
  does not retry it (a 529 is ``anthropic.OverloadedError``);
- ``hang()``: ``message_start`` and then nothing until the client goes away.

Streams are ``Transfer-Encoding: chunked`` so the connection stays open for the next request, as
httpx reuses it. A request without ``"stream": true`` gets a JSON message instead.

It records the requests (``requests``), when each delta was sent (``sent_at``), and whether a
client went away before its script was over (``disconnected``, ``cancelled_count``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODEL = "claude-sonnet-4-6"

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    529: "Overloaded",
}


# --- Scripts --------------------------------------------------------------------------------------


@dataclass
class Script:
    """What to answer one request with; build one with the functions below."""

    kind: str  # "text", "overloaded", "http_error", "hang"
    deltas: list[str] = field(default_factory=list)
    delay: float = 0.0
    first_delay: float = 0.0
    input_tokens: int = 25
    output_tokens: int = 10
    model: str = DEFAULT_MODEL
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
    model: str = DEFAULT_MODEL,
) -> Script:
    """A whole streamed answer: ``delay`` seconds between deltas, ``first_delay`` before the first."""
    return Script(
        "text",
        list(deltas),
        delay,
        first_delay,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model=model,
    )


def overloaded_midstream(deltas_before: list[str], delay: float = 0.0) -> Script:
    """A 200 stream that sends ``deltas_before`` and then an ``error`` event (overloaded)."""
    return Script("overloaded", list(deltas_before), delay)


def http_error(
    status: int = 529,
    error_type: str = "overloaded_error",
    message: str = "Overloaded",
    retry_after: str | None = None,
) -> Script:
    """A JSON error response before any stream, that the SDK is told not to retry."""
    return Script(
        "http_error", status=status, error_type=error_type, message=message, retry_after=retry_after
    )


def hang() -> Script:
    """Headers and ``message_start``, then silence until the client disconnects."""
    return Script("hang")


# --- The server -----------------------------------------------------------------------------------


class _Disconnected(Exception):
    """The client went away before the script was over."""


class _Connection:
    """The reading side of one connection, with a buffer that a watcher for EOF can fill too."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.buffer = bytearray()

    async def _fill(self) -> bool:
        chunk = await self.reader.read(65536)
        self.buffer += chunk
        return bool(chunk)

    async def readline(self) -> bytes:
        """A line with its ending, or what is left (``b""`` at EOF)."""
        while (end := self.buffer.find(b"\n")) < 0:
            if not await self._fill():
                line = bytes(self.buffer)
                self.buffer.clear()
                return line
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    async def readexactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not await self._fill():
                raise asyncio.IncompleteReadError(bytes(self.buffer), size)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    @contextlib.asynccontextmanager
    async def watching(self):
        """While a response is written, read on, so that a client that goes away is seen at once
        (a write into a closed socket may not fail for a while). Yields an event set at EOF; what
        the client sends meanwhile (its next request) stays in the buffer."""
        gone = asyncio.Event()

        async def watch() -> None:
            while await self._fill():
                pass
            gone.set()

        task = asyncio.ensure_future(watch())
        try:
            yield gone
        finally:
            task.cancel()
            # Wait until it has really stopped reading; a cancelled read loses no bytes.
            await asyncio.gather(task, return_exceptions=True)


class AnthropicStandIn:
    """``with AnthropicStandIn() as upstream:`` then ``Anthropic(base_url=upstream.base_url)``.

    ``requests``: ``{"method", "path", "headers" (lowercase names), "json", "connection",
    "received_at"}`` per ``/v1/messages`` request, where ``connection`` numbers the TCP connections
    (the same number: a kept-alive connection was reused). ``sent_at``: ``(time.monotonic(), text)``
    per delta sent, over all requests. ``disconnected`` (a ``threading.Event``) and
    ``cancelled_count``: clients that went away before their script was over.
    """

    def __init__(self, default_script: Callable[[], Script] | None = None, *, record: bool = True) -> None:
        # record=False: keep no requests or send times (a benchmark's thousands of streams).
        self._record = record
        self._default = default_script or (lambda: text_stream(["Hello", " from", " the", " stand-in."]))
        self._scripts: deque[Script] = deque()
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.sent_at: list[tuple[float, str]] = []
        self.disconnected = threading.Event()
        self.cancelled_count = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._connection_ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._stopping = False

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("the stand-in is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AnthropicStandIn:
        if self._thread is not None:
            raise RuntimeError("the stand-in is already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            except BaseException as error:
                failure.append(error)
                ready.set()
                loop.close()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            self._loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._stopping = False
        self._thread = threading.Thread(target=run, name="anthropic-standin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the stand-in did not start within 10 s")
        if failure:
            self._thread.join(5)
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the server and every open connection (ending hung scripts), and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._stopping = True

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            handlers = [task for task in self._handlers if not task.done()]
            for task in handlers:
                task.cancel()
            for writer in list(self._writers):
                writer.close()
            await asyncio.gather(*handlers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            self._loop = None
            self._thread = None

    def __enter__(self) -> AnthropicStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting ------------------------------------------------------------------------------

    def enqueue(self, script: Script) -> None:
        """Answer the next request (after those already queued) with ``script``."""
        with self._lock:
            self._scripts.append(script)

    def _next_script(self) -> Script:
        with self._lock:
            return self._scripts.popleft() if self._scripts else self._default()

    def wait_for_disconnect(self, timeout: float) -> bool:
        """Whether a client went away before its script was over, waiting up to ``timeout`` s."""
        return self.disconnected.wait(timeout)

    # --- HTTP -----------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        connection_id = next(self._connection_ids)
        conn = _Connection(reader)
        try:
            while True:  # keep-alive: several requests per connection
                request_line = await conn.readline()
                if not request_line.strip():
                    if not request_line:
                        return  # the client closed the connection between requests
                    continue  # a stray empty line between requests
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await conn.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await self._read_body(conn, headers)
                if method != "POST" or path.split("?")[0].rstrip("/") != "/v1/messages":
                    await self._json(
                        writer, 404, {"type": "error", "error": {"type": "not_found_error", "message": path}}
                    )
                    continue
                payload = json.loads(body) if body else {}
                if self._record:
                    self.requests.append(
                        {
                            "method": method,
                            "path": path,
                            "headers": headers,
                            "json": payload,
                            "connection": connection_id,
                            "received_at": time.monotonic(),
                        }
                    )
                script = self._next_script()
                try:
                    await self._play(script, bool(payload.get("stream")), conn, writer)
                except _Disconnected:
                    if not self._stopping:
                        self.cancelled_count += 1
                        self.disconnected.set()
                    return
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return  # gone mid-request, or not HTTP we understand: drop the connection
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cancelled by stop(): end quietly (Python 3.11's asyncio logs a handler task that ends
            # cancelled as an error).
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()

    @staticmethod
    async def _read_body(conn: _Connection, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while size := int((await conn.readline()).split(b";")[0].strip() or b"0", 16):
                body += await conn.readexactly(size)
                await conn.readexactly(2)  # CRLF after the chunk
            while (await conn.readline()) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return bytes(body)
        return await conn.readexactly(int(headers.get("content-length", "0") or "0"))

    async def _json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: dict[str, Any],
        extra: dict[str, str] | None = None,
        request_id: str = "req_standin",
    ) -> None:
        body = json.dumps(payload).encode()
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            f"request-id: {request_id}",
        ]
        head += [f"{name}: {value}" for name, value in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()

    async def _play(
        self, script: Script, stream: bool, conn: _Connection, writer: asyncio.StreamWriter
    ) -> None:
        number = next(self._request_ids)
        request_id, message_id = f"req_standin_{number}", f"msg_standin_{number}"
        if script.kind == "http_error" or (script.kind == "overloaded" and not stream):
            extra = {"x-should-retry": "false"}
            if script.retry_after is not None:
                extra["retry-after"] = script.retry_after
            status = script.status if script.kind == "http_error" else 529
            error = {"type": script.error_type, "message": script.message}
            await self._json(writer, status, {"type": "error", "error": error}, extra, request_id)
            return
        if not stream and script.kind == "text":
            await self._json(writer, 200, _message(script, message_id, complete=True), None, request_id)
            return
        if not stream:  # hang: not even headers
            async with conn.watching() as gone:
                await gone.wait()
            raise _Disconnected

        writer.write(
            b"HTTP/1.1 200 OK\r\n"
            b"content-type: text/event-stream; charset=utf-8\r\n"
            b"cache-control: no-cache\r\n"
            + f"request-id: {request_id}\r\n".encode()
            + b"transfer-encoding: chunked\r\n\r\n"
        )
        async with conn.watching() as gone:

            async def send(event: str, data: dict[str, Any]) -> None:
                if gone.is_set():
                    raise _Disconnected
                chunk = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                try:
                    await writer.drain()
                except ConnectionError:
                    raise _Disconnected from None

            async def pause(seconds: float) -> None:
                if seconds > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(gone.wait(), seconds)
                if gone.is_set():
                    raise _Disconnected

            start = _message(script, message_id, complete=False)
            await send("message_start", {"type": "message_start", "message": start})
            if script.kind == "hang":
                await gone.wait()
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
                if self._record:
                    self.sent_at.append((time.monotonic(), delta))
            if script.kind == "overloaded":
                error = {"type": "overloaded_error", "message": "Overloaded"}
                await send("error", {"type": "error", "error": error})
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
            writer.write(b"0\r\n\r\n")  # the last chunk: the response is over, the connection stays
            try:
                await writer.drain()
            except ConnectionError:
                raise _Disconnected from None


def _message(script: Script, message_id: str, *, complete: bool) -> dict[str, Any]:
    """The message object: a whole non-streamed answer, or as ``message_start`` has it."""
    done = complete
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": script.model,
        "content": [{"type": "text", "text": "".join(script.deltas)}] if done else [],
        "stop_reason": "end_turn" if done else None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": script.input_tokens,
            "output_tokens": script.output_tokens if done else 1,
        },
    }
