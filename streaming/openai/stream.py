"""The session's typed events in OpenAI's shapes: ``chat.completion.chunk`` objects over SSE, or one
``chat.completion``, with the sources as a Markdown block at the end of the answer and as data on
the final chunk."""

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
from streaming.engine.offline_model import OFFLINE_MODEL_NAME
from streaming.engine.wire import KEEP_ALIVE, compact_json
from streaming.eventlog import StreamRun, collect

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


def sources_block(language: str, citations: dict[int, CitationEvent]) -> str:
    if not citations:
        return ""
    lines = [f"\n\n**{SOURCES_HEADING.get(language, 'Sources')}**"]
    for marker in sorted(citations):
        c = citations[marker]
        title = markdown_text(c.title)
        url = markdown_url(c.url) if c.url else None
        lines.append(f"- [{marker}] [{title}]({url})" if url else f"- [{marker}] {title}")
    return "\n".join(lines)


def _citations_data(citations: dict[int, CitationEvent]) -> list[dict[str, Any]]:
    return [{"marker": m, "title": c.title, "url": c.url} for m, c in sorted(citations.items())]


def _usage(done: DoneEvent) -> dict[str, int]:
    return {
        "prompt_tokens": done.input_tokens,
        "completion_tokens": done.output_tokens,
        "total_tokens": done.input_tokens + done.output_tokens,
    }


async def completion_chunks(run: StreamRun, model: str, include_usage: bool) -> AsyncIterator[bytes]:
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
                    out.append(chunk({"content": event.text}))
                elif isinstance(event, CitationEvent):
                    citations[event.marker] = event
                elif isinstance(event, SessionEvent):
                    language = event.language
                elif isinstance(event, DoneEvent):
                    if block := sources_block(language, citations):
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


async def completion(run: StreamRun, model: str) -> JsonResponse:
    answer = await collect(run)
    if answer.done is None:
        error = answer.error
        message = error.message if error else "The answer stopped."
        code = error.code if error else "internal"
        return openai_error(http_status(code), message, "server_error", code)
    language = answer.session.language if answer.session else "en"
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
                        "content": answer.text + sources_block(language, answer.citations),
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(answer.done),
            "citations": _citations_data(answer.citations),
        }
    )
