"""The answer stream's events as SSE bytes: what clients read (docs/sse-protocol.md)."""

from __future__ import annotations

import json

from streaming.engine.events import Event, TokenEvent

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
