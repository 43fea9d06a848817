"""The answer stream's events, one small typed shape each, and the one table of the codes an
answer can end with (``ERROR_CODES``); ``wire`` encodes them.

Clients depend on these shapes, never on a library's, so upgrading Pydantic AI or the model SDK
cannot change what goes over the wire. docs/sse-protocol.md describes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from streaming.models import Status


def _fields(event: Any) -> dict[str, Any]:
    return {f.name: getattr(event, f.name) for f in fields(event)}


class _Fields:
    """An event whose payload is its fields, in their order (the wire's)."""

    __slots__ = ()

    def payload(self) -> dict[str, Any]:
        return _fields(self)


@dataclass(frozen=True, slots=True)
class SessionEvent(_Fields):
    type: ClassVar[str] = "session"
    session_id: str
    conversation_id: str | None
    language: str
    model: str


@dataclass(frozen=True, slots=True)
class CitationEvent:
    type: ClassVar[str] = "citation"
    marker: int
    source_id: int
    title: str
    url: str
    snippet: str
    # The cited passage (a chunk id; None once it is gone), for links to it on our source page:
    # ``source.passage`` on the wire.
    chunk_id: int | None = None
    page: int | None = None  # the PDF page of the passage ("p. 12"); None for other formats

    def payload(self) -> dict[str, Any]:
        source = {"id": self.source_id, "title": self.title, "url": self.url, "snippet": self.snippet}
        return {"marker": self.marker, "source": source | {"passage": self.chunk_id, "page": self.page}}


@dataclass(frozen=True, slots=True)
class TokenEvent(_Fields):
    type: ClassVar[str] = "token"
    text: str


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
        # `status` second, as docs/sse-protocol.md shows it.
        session_id, *rest = _fields(self).items()
        return dict([session_id, ("status", "completed"), *rest])


@dataclass(frozen=True, slots=True)
class ErrorEvent(_Fields):
    type: ClassVar[str] = "error"
    code: str
    message: str
    retryable: bool


Event = SessionEvent | CitationEvent | TokenEvent | DoneEvent | ErrorEvent


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """A code an answer can end with: what its error event says, how the end is recorded, and
    the HTTP status for clients that wait for the whole answer instead of reading the stream."""

    code: str
    http_status: int
    retryable: bool
    message: str  # what the error event tells the user
    status: Status | None = None  # the outcome recorded; None: not an outcome (a reader's error)
    recorded: str = ""  # the outcome row's error_message, when it is not ``message``
    others: tuple[str, ...] = ()  # other user messages sent with this code

    def event(self) -> ErrorEvent:
        return ErrorEvent(self.code, self.message, self.retryable)


TIMEOUT = ErrorCode(
    "timeout", 504, True, "The answer took too long and was stopped. Please try again.", Status.TIMEOUT
)
INTERNAL = ErrorCode(
    "internal", 500, True, "Something went wrong on our side while answering. Please try again.", Status.ERROR
)
CANCELLED = ErrorCode(
    "cancelled",
    500,
    True,
    "The answer was stopped before it was finished.",
    Status.CANCELLED,
    recorded="The client went away.",
)
# The cancel message of a stop the user asked for (the stop endpoints), so that the outcome row
# says so rather than that the client went away.
STOP_REQUESTED = "stop requested"
STOPPED_BY_USER = "Stopped by the user."
INTERRUPTED = ErrorCode(
    "interrupted",
    500,
    True,
    "The server is restarting and stopped this answer. Please ask again.",
    Status.INTERRUPTED,
)
# A reader that lost the shared (Redis) event log; the generation itself goes on.
STREAM_UNAVAILABLE = ErrorCode(
    "stream_unavailable", 500, True, "The connection to this answer was lost. Please try again."
)
UPSTREAM_UNAVAILABLE = ErrorCode(
    "upstream_unavailable",
    503,
    True,
    "The language model is busy or unreachable right now. Please try again in a moment.",
    Status.ERROR,
    others=("The connection to the language model was lost. Please try again in a moment.",),
)
UPSTREAM_ERROR = ErrorCode(
    "upstream_error", 502, False, "The language model could not answer this question.", Status.ERROR
)

ERROR_CODES = {
    error.code: error
    for error in (
        TIMEOUT,
        INTERNAL,
        CANCELLED,
        INTERRUPTED,
        STREAM_UNAVAILABLE,
        UPSTREAM_UNAVAILABLE,
        UPSTREAM_ERROR,
    )
}


def http_status(error_code: str) -> int:
    """The HTTP status for an answer that ended in this error, for clients that wait for the whole
    answer instead of reading the stream."""
    error = ERROR_CODES.get(error_code)
    return error.http_status if error else 500
