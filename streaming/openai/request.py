"""The Chat Completions request body: the model, the question (the last user message) and the
history, checked against what OpenAI accepts and what we can answer."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from evi360 import parsing
from evi360.errors import ApiError
from streaming.api.bodies import MAX_QUERY_CHARS
from streaming.openai.stream import model_ids


def _refused(message: str, code: str, status: int = 400) -> ApiError:
    return ApiError(status, code, message)


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
                raise _refused(
                    f"Only text content is supported (a {role} message has other parts).",
                    "unsupported_content",
                )
            texts.append(part["text"])
        return "".join(texts)
    raise _refused(f"A {role} message needs text content.", "invalid_content")


def parse_body(raw: bytes) -> tuple[str, str, list[tuple[str, str]], bool, bool]:
    """(model, question, history pairs, stream, include usage) from a Chat Completions body."""
    body = parsing.loads(raw or b"")
    if not isinstance(body, dict):
        raise _refused("The request body must be a JSON object.", "invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _refused("'model' is required.", "missing_model")
    if model not in model_ids():
        raise _refused(
            f"The model '{model}' does not exist; use one of: {', '.join(model_ids())}.",
            "model_not_found",
            404,
        )
    if body.get("n", 1) != 1:
        raise _refused("Only n=1 is supported.", "unsupported_n")
    if body.get("tools") or body.get("functions") or body.get("tool_choice") not in (None, "none"):
        raise _refused("Tools and functions are not supported.", "unsupported_tools")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _refused("'messages' must be a non-empty list.", "invalid_messages")
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
            raise _refused("Every message needs a role: system, user or assistant.", "invalid_messages")
        role = message["role"]
        if role == "tool":
            raise _refused("Tool messages are not supported.", "unsupported_tools")
        text = _text(message.get("content"), role)
        # Every message is bounded and checked, the ignored system ones too: all were sent.
        if len(text) > settings.EVI360_OPENAI_MAX_MESSAGE_CHARS:
            raise _refused(
                f"A message is longer than {settings.EVI360_OPENAI_MAX_MESSAGE_CHARS} characters.",
                "message_too_long",
            )
        total += len(text)
        if total > settings.EVI360_OPENAI_MAX_MESSAGES_CHARS:
            raise _refused(
                f"The messages are longer than {settings.EVI360_OPENAI_MAX_MESSAGES_CHARS} "
                "characters together.",
                "messages_too_long",
            )
        if "\x00" in text:  # as the REST API's query: PostgreSQL cannot store it; nobody types it
            raise _refused("Messages must not contain NUL characters.", "invalid_query")
        if role in ("system", "developer"):
            continue  # our instructions stand
        turns.append((role, text))
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise _refused("The last message must be a user message with a question.", "invalid_messages")
    # The limit is on what was sent, as on the REST API (not after strip()).
    if len(turns[-1][1]) > MAX_QUERY_CHARS:
        raise _refused(f"The question is longer than {MAX_QUERY_CHARS} characters.", "query_too_long")
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
