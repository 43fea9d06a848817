"""A lean SSE load client for the benchmarks: HTTP/1.1 on asyncio protocols, keep-alive, chunked
bodies, and a token event's arrival timed when its bytes arrive.

Why not httpx: at 500 streams httpx spent ~290 µs of CPU per event (8.8 s for one 500-stream
burst, three times the server's), so the load generator saturated a core of the two and the
figures measured the client's queue more than the servers. This client costs a few µs per event;
it is the same for both servers, so ratios stay fair.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TOKEN = b"\nevent: token\n"  # a line of its own, wherever it is in the event


class StreamError(ConnectionError):
    """The connection failed, or the server answered with something other than 200."""


@dataclass
class Result:
    started: float
    arrivals: list[float] = field(default_factory=list)

    @property
    def ttft(self) -> float:
        """Seconds from the request sent to the first token event received."""
        return self.arrivals[0] - self.started

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.arrivals)]


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._done: asyncio.Future[None] | None = None
        self._result: Result | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, result: Result) -> asyncio.Future[None]:
        self._done = asyncio.get_running_loop().create_future()
        self._result = result
        self._buffer = b""
        self._headers_done = False
        self._chunked = False
        self._remaining = -1  # body bytes still expected with Content-Length; -1: chunked/unknown
        self._chunk_left = 0  # bytes of the current chunk still to come
        self._event = b""  # the SSE event being received
        assert self.transport is not None
        self.transport.write(request)
        return self._done

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self._done is None or self._done.done():
            return
        if not self._headers_done:
            self._buffer += data
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self._buffer[:end], self._buffer[end + 4 :]
            self._buffer = b""
            self._headers_done = True
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip().lower()
            if status != 200:
                self._fail(StreamError(f"HTTP {status}"))
                return
            self._chunked = headers.get(b"transfer-encoding") == b"chunked"
            if not self._chunked and b"content-length" in headers:
                self._remaining = int(headers[b"content-length"])
        if self._chunked:
            self._chunks(data, now)
        else:
            self._body(data, now)
            if self._remaining >= 0:
                self._remaining -= len(data)
                if self._remaining <= 0:
                    self._finish()

    def _chunks(self, data: bytes, now: float) -> None:
        buffer = self._buffer + data if self._buffer else data
        position = 0
        while position < len(buffer):
            if self._chunk_left:
                take = buffer[position : position + self._chunk_left]
                self._body(take, now)
                self._chunk_left -= len(take)
                position += len(take)
                continue
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                break
            if line_end == position:  # the CRLF after a chunk's data
                position += 2
                continue
            size = int(buffer[position:line_end].split(b";", 1)[0], 16)
            position = line_end + 2
            if size == 0:
                self._buffer = b""
                self._finish()
                return
            self._chunk_left = size
        self._buffer = buffer[position:]

    def _body(self, data: bytes, now: float) -> None:
        assert self._result is not None
        text = self._event + data
        start = 0
        while (end := text.find(b"\n\n", start)) >= 0:
            if TOKEN in b"\n" + text[start : end + 1]:
                self._result.arrivals.append(now)
            start = end + 2
        self._event = text[start:]

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _fail(self, error: Exception) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if self._done is not None and not self._done.done():
            self._done.set_exception(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is not None and not self._done.done():
            if not self._chunked and self._remaining < 0 and self._headers_done:
                self._done.set_result(None)  # a body delimited by the close
            else:
                self._done.set_exception(StreamError(str(exc or "connection closed")))


class Client:
    """POSTs JSON to one URL and times the SSE token events of the answer; connections are kept
    alive and reused, as a browser or httpx would."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 300.0) -> None:
        self.timeout = timeout  # for a whole stream: a hung server fails it instead of the run
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._idle: deque[_Connection] = deque()

    async def stream(self, payload: dict[str, object]) -> Result:
        body = json.dumps(payload).encode()
        request = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.headers}"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        connection = None
        while self._idle:
            candidate = self._idle.pop()
            if not candidate.closed:
                connection = candidate
                break
        result = Result(started=time.perf_counter())
        if connection is None:
            try:
                _, connection = await asyncio.get_running_loop().create_connection(
                    _Connection, self.host, self.port
                )
            except OSError as exc:
                raise StreamError(str(exc)) from exc
        try:
            await asyncio.wait_for(connection.send(request, result), self.timeout)
        except TimeoutError as exc:
            connection.closed = True
            if connection.transport is not None:
                connection.transport.close()
            raise StreamError("timed out") from exc
        except BaseException:
            connection.closed = True
            if connection.transport is not None:
                connection.transport.close()
            raise
        if not connection.closed:
            self._idle.append(connection)
        return result

    def close(self) -> None:
        while self._idle:
            connection = self._idle.pop()
            if connection.transport is not None:
                connection.transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
