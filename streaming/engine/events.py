"""The wire format of the answer stream: one small typed shape per event and one encoder.

Clients depend on this module's output, never on a library's, so upgrading Pydantic AI or the
model SDK cannot change what goes over the wire. docs/sse-protocol.md describes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

# JSON without spaces or ASCII escapes: what every wire format here sends.
compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class SessionEvent:
    type: ClassVar[str] = "session"
    session_id: str
    conversation_id: str | None
    language: str
    model: str

    def payload(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "conversation_id": self.conversation_id,
            "language": self.language,
            "model": self.model,
        }


@dataclass(frozen=True, slots=True)
class CitationEvent:
    type: ClassVar[str] = "citation"
    marker: int
    source_id: int
    title: str
    url: str
    snippet: str

    def payload(self) -> dict[str, Any]:
        return {
            "marker": self.marker,
            "source": {"id": self.source_id, "title": self.title, "url": self.url, "snippet": self.snippet},
        }


@dataclass(frozen=True, slots=True)
class TokenEvent:
    type: ClassVar[str] = "token"
    text: str

    def payload(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True, slots=True)
class DoneEvent:
    type: ClassVar[str] = "done"
    session_id: str
    ttft_ms: int | None
    duration_ms: int
    input_tokens: int
    output_tokens: int
    citations: list[int] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "status": "completed",
            "ttft_ms": self.ttft_ms,
            "duration_ms": self.duration_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "citations": self.citations,
        }


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    type: ClassVar[str] = "error"
    code: str
    message: str
    retryable: bool

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


_ERROR_HTTP_STATUS = {"timeout": 504, "upstream_unavailable": 503, "upstream_error": 502}


def http_status(error_code: str) -> int:
    """The HTTP status for an answer that ended in this error, for clients that wait for the whole
    answer instead of reading the stream."""
    return _ERROR_HTTP_STATUS.get(error_code, 500)


Event = SessionEvent | CitationEvent | TokenEvent | DoneEvent | ErrorEvent


def encode(seq: int, event: Event) -> bytes:
    """One event: ``id``, ``event`` and a single ``data`` line of JSON (JSON escapes newlines)."""
    if type(event) is TokenEvent:  # once per token: the same bytes without building a dict
        return f'id: {seq}\nevent: token\ndata: {{"text":{compact_json(event.text)}}}\n\n'.encode()
    return f"id: {seq}\nevent: {event.type}\ndata: {compact_json(event.payload())}\n\n".encode()


def encode_retry(milliseconds: int) -> bytes:
    return f"retry: {milliseconds}\n\n".encode()


KEEP_ALIVE = b": keep-alive\n\n"
