"""The session's typed events as the AI SDK's UI message stream (protocol v1, what ``useChat``'s
``DefaultChatTransport`` reads): SSE ``data:`` lines of JSON chunks, then ``data: [DONE]``.

=================  ==========================================================================
our event          UI message chunks
=================  ==========================================================================
session            ``start``: ``messageId`` (the session id), ``messageMetadata`` {sessionId,
                   conversationId, language}
citation           ``source-url`` (``source-document`` when the source has no http(s) URL),
                   ``sourceId`` the marker; it comes before the token that holds the marker
token              ``text-start`` before the first, then ``text-delta`` (markers whole: the
                   engine holds a half-written ``[n`` back, as on our SSE)
done               ``text-end``, ``finish`` (``messageMetadata`` {model, usage, ttftMs,
                   durationMs}), ``[DONE]``
error              ``text-end`` if text was open, ``error`` (``errorText`` in the answer's
                   language), ``[DONE]``; ``cancelled`` (stopped) is an ``abort`` instead
=================  ==========================================================================

The chunks are Pydantic AI's classes (``pydantic_ai.ui.vercel_ai.response_types``: StartChunk,
SourceUrlChunk, SourceDocumentChunk, TextStartChunk, TextDeltaChunk, TextEndChunk, FinishChunk,
ErrorChunk, AbortChunk, DoneChunk), encoded by their ``encode`` (camelCase, no nulls), framed
as Pydantic AI's ``VercelAIEventStream.encode_event`` frames them, with its header
(``VERCEL_AI_DSP_HEADERS``). Its ``VercelAIEventStream`` itself is not used: it translates an
agent run's events, and our answers stream the engine's events (markers held back, sources
first, one log read by every reader).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from pydantic_ai.ui.vercel_ai._event_stream import VERCEL_AI_DSP_HEADERS
from pydantic_ai.ui.vercel_ai.response_types import (
    AbortChunk,
    BaseChunk,
    DoneChunk,
    ErrorChunk,
    FinishChunk,
    SourceDocumentChunk,
    SourceUrlChunk,
    StartChunk,
    TextDeltaChunk,
    TextEndChunk,
    TextStartChunk,
)

from streaming.engine.events import (
    CANCELLED,
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    SessionEvent,
    TokenEvent,
)
from streaming.engine.wire import KEEP_ALIVE
from streaming.web.links import SourcePage

# Every chunk class this stream sends (the OpenAPI schema describes them: streaming/api/schema).
CHUNKS = (
    StartChunk,
    SourceUrlChunk,
    SourceDocumentChunk,
    TextStartChunk,
    TextDeltaChunk,
    TextEndChunk,
    FinishChunk,
    ErrorChunk,
    AbortChunk,
)

# The AI SDK major version the chunks are encoded for (v7 reads v6's wire).
SDK_VERSION = 7
HEADERS = dict(VERCEL_AI_DSP_HEADERS)  # {"x-vercel-ai-ui-message-stream": "v1"}
PROVIDER = "evi360"  # our key in a chunk's providerMetadata

# The error event's message in Dutch, by code (the English ones are the engine's, ERROR_CODES).
DUTCH_ERRORS = {
    "timeout": "Het antwoord duurde te lang en is gestopt. Probeer het opnieuw.",
    "internal": "Er ging bij ons iets mis tijdens het antwoorden. Probeer het opnieuw.",
    "cancelled": "Het antwoord is gestopt voordat het af was.",
    "interrupted": "De server wordt opnieuw gestart en heeft dit antwoord gestopt. Stel je vraag opnieuw.",
    "stream_unavailable": "De verbinding met dit antwoord is verbroken. Probeer het opnieuw.",
    "upstream_unavailable": "Het taalmodel is nu bezet of onbereikbaar. Probeer het zo meteen opnieuw.",
    "upstream_error": "Het taalmodel kon deze vraag niet beantwoorden.",
}


def user_message(error: ErrorEvent, language: str) -> str:
    """The error event's message in the answer's language."""
    return DUTCH_ERRORS.get(error.code, error.message) if language == "nl" else error.message


def _data(chunk: BaseChunk) -> bytes:
    return f"data: {chunk.encode(SDK_VERSION)}\n\n".encode()


def _source(citation: CitationEvent, source_page: SourcePage) -> BaseChunk:
    page = source_page(citation.source_id, citation.chunk_id)
    metadata = {
        PROVIDER: {
            "marker": citation.marker,
            "sourceId": citation.source_id,
            "snippet": citation.snippet,
            "page": page,
        }
    }
    if citation.url and urlsplit(citation.url).scheme.lower() in ("http", "https"):
        return SourceUrlChunk(
            source_id=str(citation.marker), url=citation.url, title=citation.title, provider_metadata=metadata
        )
    # No URL of its own: a document, whose page on this site is in the metadata.
    return SourceDocumentChunk(
        source_id=str(citation.marker),
        media_type="text/html",
        title=citation.title,
        provider_metadata=metadata,
    )


class UIMessageStream:
    """The chunks of one answer, event by event (a reader's state: whether text is open, the
    answer's language and model)."""

    def __init__(self, source_page: SourcePage) -> None:
        self.source_page = source_page
        self.text_id: str | None = None
        self.session_id = ""
        self.language = "en"
        self.model = ""

    def chunks(self, event: Event) -> list[BaseChunk]:
        if isinstance(event, TokenEvent):
            if self.text_id is None:
                self.text_id = f"text-{self.session_id}"
                return [TextStartChunk(id=self.text_id), TextDeltaChunk(id=self.text_id, delta=event.text)]
            return [TextDeltaChunk(id=self.text_id, delta=event.text)]
        if isinstance(event, CitationEvent):
            return [_source(event, self.source_page)]
        if isinstance(event, SessionEvent):
            self.session_id, self.language, self.model = event.session_id, event.language, event.model
            metadata = {
                "sessionId": event.session_id,
                "conversationId": event.conversation_id,
                "language": event.language,
            }
            return [StartChunk(message_id=event.session_id, message_metadata=metadata)]
        if isinstance(event, DoneEvent):
            usage = {"inputTokens": event.input_tokens, "outputTokens": event.output_tokens}
            metadata: dict[str, Any] = {
                "model": self.model,
                "usage": usage,
                "ttftMs": event.ttft_ms,
                "durationMs": event.duration_ms,
            }
            return [
                *self._end_text(),
                FinishChunk(finish_reason="stop", message_metadata=metadata),
                DoneChunk(),
            ]
        if isinstance(event, ErrorEvent):
            message = user_message(event, self.language)
            # A stop is not a failure: the AI SDK keeps the partial answer and shows no error.
            ending = (
                AbortChunk(reason=message) if event.code == CANCELLED.code else ErrorChunk(error_text=message)
            )
            return [*self._end_text(), ending, DoneChunk()]
        return []

    def _end_text(self) -> list[BaseChunk]:
        if self.text_id is None:
            return []
        text_id, self.text_id = self.text_id, None
        return [TextEndChunk(id=text_id)]


async def ui_message_stream(
    batches: AsyncIterator[list[Event] | None], source_page: SourcePage
) -> AsyncIterator[bytes]:
    """The UI message stream of an answer's events (``EventLog.follow_batches``, or
    ``wire.decoded`` of its SSE bytes): the events that arrive together in one write; a
    keep-alive comment for a ``None`` (the AI SDK's parser skips comments)."""
    stream = UIMessageStream(source_page)
    async for events in batches:
        if events is None:
            yield KEEP_ALIVE
            continue
        out = [_data(chunk) for event in events for chunk in stream.chunks(event)]
        if out:
            yield b"".join(out)
