"""The session's typed events in OpenAI's shapes: ``chat.completion.chunk`` objects over SSE, or one
``chat.completion``, with the sources as a Markdown block at the end of the answer, as data on
the final chunk, and as OpenAI's ``url_citation`` annotations on the marker ``[n]`` itself."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.http import JsonResponse

from evi360.errors import openai_error
from streaming.engine import agent
from streaming.engine.events import (
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    SessionEvent,
    TokenEvent,
    http_status,
)
from streaming.engine.markers import markers_in
from streaming.engine.offline_model import OFFLINE_MODEL_NAME
from streaming.engine.wire import KEEP_ALIVE, compact_json
from streaming.eventlog import StreamRun, collect
from streaming.web.links import SourcePage

MODEL_ID = "evi-specialist"
OFFLINE_MODEL_ID = "evi-specialist-offline"
SOURCES_HEADING = {"nl": "Bronnen", "en": "Sources"}


def _data(payload: dict[str, Any]) -> bytes:
    """One SSE ``data:`` line of the Chat Completions stream."""
    return b"data: " + compact_json(payload).encode() + b"\n\n"


def model_ids() -> list[str]:
    ids = [MODEL_ID]
    if agent.model_display_name() == OFFLINE_MODEL_NAME:
        ids.append(OFFLINE_MODEL_ID)
    return ids


# The Markdown punctuation that means something inside a line (links, emphasis, code, tables,
# strikethrough), backslash-escaped in a title (CommonMark lets any ASCII punctuation be); what
# only means something at a line's start ("#", "-", "1.") cannot be there. "<", ">" and "&" become
# HTML entities, so no renderer sees a tag or an entity of the title's.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]()|~])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def markdown_text(text: str) -> str:
    """Text shown as itself in Markdown: no link, emphasis, HTML or line break of its own."""
    text = " ".join(text.split())  # a newline would end the list item
    text = re.sub(r"[&<>]", lambda m: _HTML[m[0]], text)
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


def markdown_url(url: str) -> str | None:
    """An http(s) URL fit for a Markdown link's destination (percent-encoded: no space, no
    parenthesis, no angle bracket, no quote, no backslash), or None for any other URL."""
    url = url.strip()
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return None
    return quote(url, safe="!#$%&*+,-./:;=?@[]^_{|}~")


def source_url(citation: CitationEvent, source_page: SourcePage) -> str:
    """The source's own http(s) URL, else our page of it at the cited passage."""
    own = markdown_url(citation.url) if citation.url else None
    return own or source_page(citation.source_id, citation.chunk_id)


def sources_block(language: str, citations: dict[int, CitationEvent], source_page: SourcePage) -> str:
    if not citations:
        return ""
    lines = [f"\n\n**{SOURCES_HEADING.get(language, 'Sources')}**"]
    for marker in sorted(citations):
        c = citations[marker]
        url = markdown_url(source_url(c, source_page))
        page = f", p. {c.page}" if c.page else ""
        lines.append(f"- [{marker}] [{markdown_text(c.title)}]({url}){page}")
    return "\n".join(lines)


def url_citation(
    citation: CitationEvent, source_page: SourcePage, start: int, *, shared: bool = False
) -> dict[str, Any]:
    """OpenAI's annotation (``openai.types.chat.chat_completion_message.Annotation``) of the marker
    ``[n]`` that starts at ``start`` of the content; ``end_index`` is exclusive, as in OpenAI's.

    ``shared``: an earlier marker's annotation has this URL (two passages of one document).
    OpenWebUI merges sources by URL and pairs its ``[n]`` with its n-th source, so the later one
    gets the passage as its URL's fragment (when it has none): one source per marker."""
    url = source_url(citation, source_page)
    if shared and citation.chunk_id is not None and "#" not in url:
        url = f"{url}#passage-{citation.chunk_id}"
    return {
        "type": "url_citation",
        "url_citation": {
            "url": url,
            "title": citation.title,
            "start_index": start,
            "end_index": start + len(f"[{citation.marker}]"),
        },
    }


def annotations_in(
    text: str, offset: int, citations: dict[int, CitationEvent], done: set[int], source_page: SourcePage
) -> list[dict[str, Any]]:
    """The annotations of the markers in ``text`` (at ``offset`` of the content) not yet annotated.

    Only a marker's first appearance: clients (OpenWebUI among them) list annotations as sources,
    so a repeated marker would list its source twice. A marker without a source has none. A token
    never ends inside a marker (``engine.markers``), so each marker is whole in one text."""
    found = []
    for marker, at in markers_in(text):
        if marker in citations and marker not in done:
            citation = citations[marker]
            url = source_url(citation, source_page)
            shared = any(source_url(citations[m], source_page) == url for m in done)
            done.add(marker)
            found.append(url_citation(citation, source_page, offset + at, shared=shared))
    return found


def _citations_data(citations: dict[int, CitationEvent]) -> list[dict[str, Any]]:
    return [{"marker": m, "title": c.title, "url": c.url} for m, c in sorted(citations.items())]


def _usage(done: DoneEvent) -> dict[str, int]:
    return {
        "prompt_tokens": done.input_tokens,
        "completion_tokens": done.output_tokens,
        "total_tokens": done.input_tokens + done.output_tokens,
    }


async def completion_chunks(
    run: StreamRun, model: str, include_usage: bool, source_page: SourcePage
) -> AsyncIterator[bytes]:
    """chat.completion.chunk events as the session's events arrive, then ``[DONE]``."""
    run.add_reader()
    created = int(time.time())
    head = {
        "id": f"chatcmpl-{run.session_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        payload = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return _data(payload)

    citations: dict[int, CitationEvent] = {}
    annotated: set[int] = set()
    length = 0  # characters of content sent so far: the annotations' indexes count from it
    language = "en"
    try:
        yield chunk({"role": "assistant", "content": ""})
        # The events that are there together go out in one write, as on the SSE endpoint.
        async for events in run.log.follow_batches(keep_alive=settings.EVI360_SSE_KEEPALIVE):
            if events is None:
                yield KEEP_ALIVE
                continue
            out: list[bytes] = []
            for event in events:
                if isinstance(event, TokenEvent):
                    delta: dict[str, Any] = {"content": event.text}
                    # A marker's citation event comes before the token with its text.
                    if found := annotations_in(event.text, length, citations, annotated, source_page):
                        delta["annotations"] = found
                    out.append(chunk(delta))
                    length += len(event.text)
                elif isinstance(event, CitationEvent):
                    citations[event.marker] = event
                elif isinstance(event, SessionEvent):
                    language = event.language
                elif isinstance(event, DoneEvent):
                    if block := sources_block(language, citations, source_page):
                        out.append(chunk({"content": block}))
                    out.append(chunk({}, "stop", citations=_citations_data(citations)))
                    if include_usage:
                        out.append(_data({**head, "choices": [], "usage": _usage(event)}))
                elif isinstance(event, ErrorEvent):
                    # OpenAI SDKs raise an APIError with this message for a chunk that carries "error".
                    error = {"message": event.message, "type": "server_error", "code": event.code}
                    out.append(_data({"error": error}))
            if out:
                yield b"".join(out)
        yield b"data: [DONE]\n\n"
    finally:
        run.remove_reader()


async def completion(run: StreamRun, model: str, source_page: SourcePage) -> JsonResponse:
    answer = await collect(run)
    if answer.done is None:
        error = answer.error
        message = error.message if error else "The answer stopped."
        code = error.code if error else "internal"
        return openai_error(http_status(code), message, "server_error", code)
    language = answer.session.language if answer.session else "en"
    annotations = annotations_in(answer.text, 0, answer.citations, set(), source_page)
    return JsonResponse(
        {
            "id": f"chatcmpl-{run.session_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": answer.text + sources_block(language, answer.citations, source_page),
                        "annotations": annotations,
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(answer.done),
            "citations": _citations_data(answer.citations),
        }
    )
