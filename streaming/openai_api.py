"""An OpenAI-compatible Chat Completions API (``/v1/models``, ``/v1/chat/completions``), so
OpenWebUI and OpenAI SDK clients can use the specialist.

It starts streams exactly like ``/api/v1/stream/query`` (``starting.begin_stream``: rate limit,
per-user cap, the session row, the generation task, the timeout) and translates the session's
typed events into OpenAI's shapes: ``chat.completion.chunk`` objects over SSE, or one
``chat.completion``. The answer keeps its ``[n]`` markers and ends with a short sources list in
Markdown, so plain OpenAI clients show the citations; the final chunk also carries them as data.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from evi360 import parsing
from evi360.errors import openai_error

from . import agent
from .api import MAX_QUERY_CHARS
from .auth import identify
from .eventlog import StreamRun, collect
from .models import ClientKind
from .offline_model import OFFLINE_MODEL_NAME
from .responses import EventStreamResponse
from .sse import (
    KEEP_ALIVE,
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    SessionEvent,
    TokenEvent,
    compact_json,
    http_status,
)
from .starting import StreamRefused, begin_stream

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


class BadBody(Exception):
    def __init__(self, message: str, code: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


def _text(content: Any, role: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise BadBody(
                    f"Only text content is supported (a {role} message has other parts).",
                    "unsupported_content",
                )
            texts.append(part["text"])
        return "".join(texts)
    raise BadBody(f"A {role} message needs text content.", "invalid_content")


def parse_body(raw: bytes) -> tuple[str, str, list[tuple[str, str]], bool, bool]:
    """(model, question, history pairs, stream, include usage) from a Chat Completions body."""
    try:
        body = parsing.loads(raw or b"")
    except parsing.JSONRefused as refused:
        raise BadBody(str(refused), "invalid_json") from None
    if not isinstance(body, dict):
        raise BadBody("The request body must be a JSON object.", "invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadBody("'model' is required.", "missing_model")
    if model not in model_ids():
        raise BadBody(
            f"The model '{model}' does not exist; use one of: {', '.join(model_ids())}.",
            "model_not_found",
            404,
        )
    if body.get("n", 1) != 1:
        raise BadBody("Only n=1 is supported.", "unsupported_n")
    if body.get("tools") or body.get("functions") or body.get("tool_choice") not in (None, "none"):
        raise BadBody("Tools and functions are not supported.", "unsupported_tools")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadBody("'messages' must be a non-empty list.", "invalid_messages")
    turns: list[tuple[str, str]] = []
    total = 0
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
        ):
            raise BadBody("Every message needs a role: system, user or assistant.", "invalid_messages")
        role = message["role"]
        if role == "tool":
            raise BadBody("Tool messages are not supported.", "unsupported_tools")
        text = _text(message.get("content"), role)
        # Every message is bounded and checked, the ignored system ones too: all were sent.
        if len(text) > settings.EVI360_OPENAI_MAX_MESSAGE_CHARS:
            raise BadBody(
                f"A message is longer than {settings.EVI360_OPENAI_MAX_MESSAGE_CHARS} characters.",
                "message_too_long",
            )
        total += len(text)
        if total > settings.EVI360_OPENAI_MAX_MESSAGES_CHARS:
            raise BadBody(
                f"The messages are longer than {settings.EVI360_OPENAI_MAX_MESSAGES_CHARS} "
                "characters together.",
                "messages_too_long",
            )
        if "\x00" in text:  # as the REST API's query: PostgreSQL cannot store it; nobody types it
            raise BadBody("Messages must not contain NUL characters.", "invalid_query")
        if role in ("system", "developer"):
            continue  # our instructions stand
        turns.append((role, text))
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise BadBody("The last message must be a user message with a question.", "invalid_messages")
    # The limit is on what was sent, as on the REST API (not after strip()).
    if len(turns[-1][1]) > MAX_QUERY_CHARS:
        raise BadBody(f"The question is longer than {MAX_QUERY_CHARS} characters.", "query_too_long")
    question = turns[-1][1].strip()
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in turns[:-1]:
        if role == "user":
            pending = text
        elif pending is not None:
            history.append((pending, text))
            pending = None
    history = history[-settings.EVI360_HISTORY_TURNS :] if settings.EVI360_HISTORY_TURNS else []
    stream = bool(body.get("stream", False))
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    return model, question, history, stream, include_usage


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


async def _completion_chunks(run: StreamRun, model: str, include_usage: bool) -> AsyncIterator[bytes]:
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


async def _completion(run: StreamRun, model: str) -> JsonResponse:
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


async def _caller(request: HttpRequest):  # type: ignore[no-untyped-def]
    caller = await identify(request)
    if caller.user is None or caller.via_session:
        return None, openai_error(
            401,
            caller.problem or "Send 'Authorization: Bearer <API key>'.",
            "invalid_request_error",
            "invalid_api_key",
        )
    return caller.user, None


@csrf_exempt  # bearer-token API: a wrong method is a 405 whatever the cookies
async def models(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return openai_error(
            405, "Use GET.", "invalid_request_error", "method_not_allowed", headers={"Allow": "GET"}
        )
    _user, refusal = await _caller(request)
    if refusal:
        return refusal
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {"id": model_id, "object": "model", "created": 0, "owned_by": "evi360"}
                for model_id in model_ids()
            ],
        }
    )


@csrf_exempt  # bearer-token API: no cookies, no CSRF
async def chat_completions(request: HttpRequest) -> HttpResponse:
    received_at = time.monotonic()
    if request.method != "POST":
        return openai_error(
            405, "Use POST.", "invalid_request_error", "method_not_allowed", headers={"Allow": "POST"}
        )
    user, refusal = await _caller(request)
    if refusal:
        return refusal
    try:
        model, question, history, stream, include_usage = parse_body(request.body)
    except BadBody as bad:
        return openai_error(bad.status, bad.message, "invalid_request_error", bad.code)
    try:
        run = await begin_stream(
            request,
            user,
            query=question,
            requested_language=None,
            conversation_id=None,
            client_kind=ClientKind.OPENAI,
            received_at=received_at,
            history=history,
        )
    except StreamRefused as refused:
        kind = "rate_limit_error" if refused.status == 429 else "server_error"
        return openai_error(refused.status, refused.message, kind, refused.code, headers=refused.headers)
    if not stream:
        return await _completion(run, model)
    return EventStreamResponse(_completion_chunks(run, model, include_usage), "text/event-stream")
