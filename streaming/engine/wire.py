"""The answer stream's events as SSE bytes: what clients read (docs/sse-protocol.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from streaming.engine.events import CitationEvent, DoneEvent, ErrorEvent, Event, SessionEvent, TokenEvent

# JSON without spaces or ASCII escapes: what every wire format here sends.
compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode(seq: int, event: Event) -> bytes:
    """One event: ``id``, ``event`` and a single ``data`` line of JSON (JSON escapes newlines)."""
    if type(event) is TokenEvent:  # once per token: the same bytes without building a dict
        return f'id: {seq}\nevent: token\ndata: {{"text":{compact_json(event.text)}}}\n\n'.encode()
    return f"id: {seq}\nevent: {event.type}\ndata: {compact_json(event.payload())}\n\n".encode()


def encode_retry(milliseconds: int) -> bytes:
    return f"retry: {milliseconds}\n\n".encode()


KEEP_ALIVE = b": keep-alive\n\n"


def decode(name: str, data: str) -> Event:
    """The event that ``encode`` wrote as ``event: name`` and ``data``: for readers that speak
    another wire format but read the SSE bytes (another worker's run, through the shared log)."""
    payload = json.loads(data)
    if name == "token":
        return TokenEvent(payload["text"])
    if name == "citation":
        source = payload["source"]
        return CitationEvent(
            payload["marker"],
            source["id"],
            source["title"],
            source["url"],
            source["snippet"],
            source.get("passage"),  # absent in a log written before passages
            source.get("page"),  # absent in a log written before pages
        )
    if name == "done":
        del payload["status"]
        return DoneEvent(**payload)
    return {"session": SessionEvent, "error": ErrorEvent}[name](**payload)


async def decoded(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[Event] | None]:
    """The events in an SSE body, a list per chunk read (as ``EventLog.follow_batches`` gives
    them); None for a chunk with only comments (a keep-alive). A chunk may end inside an event."""
    pending = b""
    async for chunk in chunks:
        *blocks, pending = (pending + chunk).split(b"\n\n")
        events: list[Event] = []
        for block in blocks:
            fields = dict(
                line.split(": ", 1)
                for line in block.decode().split("\n")
                if line and not line.startswith(":")
            )
            if "event" in fields:
                events.append(decode(fields["event"], fields["data"]))
        yield events or None
