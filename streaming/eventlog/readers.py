"""Reading a run of this process: a whole answer (``collect``) or an SSE body (``stream_response``).
A reader counts as one while it reads, so the generation stops when nobody is left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from django.conf import settings

from streaming.engine.events import (
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    SessionEvent,
    TokenEvent,
)
from streaming.engine.wire import encode_retry
from streaming.eventlog.run import StreamRun


@dataclass
class Collected:
    """A whole answer, read from a run's typed events."""

    session: SessionEvent | None = None
    text: str = ""
    citations: dict[int, CitationEvent] = field(default_factory=dict)
    done: DoneEvent | None = None
    error: ErrorEvent | None = None


async def collect(run: StreamRun) -> Collected:
    """Wait for the run to end and return its answer (for clients that cannot read a stream).
    Counts as a reader meanwhile, so a client that goes away cancels the generation."""
    result = Collected()
    parts: list[str] = []
    run.add_reader()
    try:
        async for event in run.log.follow():
            if isinstance(event, TokenEvent):
                parts.append(event.text)
            elif isinstance(event, CitationEvent):
                result.citations[event.marker] = event
            elif isinstance(event, SessionEvent):
                result.session = event
            elif isinstance(event, DoneEvent):
                result.done = event
            elif isinstance(event, ErrorEvent):
                result.error = event
    finally:
        run.remove_reader()
    result.text = "".join(parts)
    return result


async def stream_response(
    run: StreamRun, *, preamble: bytes, keep_alive: float, start: int = 0
) -> AsyncIterator[bytes]:
    """The body of an SSE response: the preamble, then the run's events as they come.

    Django cancels this iterator with CancelledError when the client disconnects; the reader
    count drops then, which cancels the generation when nobody is left to read it.
    """
    run.add_reader()
    try:
        yield preamble
        async for chunk in run.log.read(start, keep_alive=keep_alive):
            yield chunk
    finally:
        run.remove_reader()


def sse_body(run: StreamRun, start: int = 0) -> AsyncIterator[bytes]:
    """``stream_response`` with the settings' retry preamble and keep-alive interval."""
    return stream_response(
        run,
        start=start,
        preamble=encode_retry(settings.EVI360_SSE_RETRY_MS),
        keep_alive=settings.EVI360_SSE_KEEPALIVE,
    )
