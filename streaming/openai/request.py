"""The Chat Completions request body: the model, the question (the last user message) and the
history, checked against what OpenAI accepts and what we can answer. Each field keeps its rule,
code and message; ``streaming.api.bodies.validated`` reports the first that fails."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.fields import empty

from streaming.api.bodies import MAX_QUERY_CHARS, validated
from streaming.openai.stream import model_ids


def _refused(message: str, code: str) -> serializers.ValidationError:
    return serializers.ValidationError(message, code=code)


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


class ModelField(serializers.CharField):
    def run_validation(self, data: Any = empty) -> str:
        if not isinstance(data, str) or not data:
            raise _refused("'model' is required.", "missing_model")
        if data not in model_ids():
            raise _refused(
                f"The model '{data}' does not exist; use one of: {', '.join(model_ids())}.", "model_not_found"
            )
        return data


class OneChoiceField(serializers.IntegerField):
    def run_validation(self, data: Any = empty) -> int:
        if data is not empty and data != 1:
            raise _refused("Only n=1 is supported.", "unsupported_n")
        return 1


class OfferedToolsField(serializers.JSONField):
    """``tools`` / ``functions``: a list offered to the model, accepted and never called.
    OpenWebUI (0.12, native function calling, its default) offers its built-in tools with every
    request; with ``tool_choice`` "auto" a model may always answer without calling one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)

    def run_validation(self, data: Any = empty) -> None:
        if data not in (empty, None) and not isinstance(data, list):
            raise _refused("'tools' and 'functions' must be lists.", "invalid_tools")


class NoForcedToolField(serializers.JSONField):
    """``tool_choice`` / ``function_call``: absent, null, "none" or "auto"; a call we must make
    ("required", a named function) is refused, as we call none."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)

    def run_validation(self, data: Any = empty) -> None:
        if data not in (empty, None, "none", "auto"):
            raise _refused("Tools and functions are not supported.", "unsupported_tools")


class MessagesField(serializers.ListField):
    """The messages: (the question, the history's (question, answer) pairs)."""

    def run_validation(self, data: Any = empty) -> tuple[str, list[tuple[str, str]]]:
        if not isinstance(data, list) or not data:
            raise _refused("'messages' must be a non-empty list.", "invalid_messages")
        turns: list[tuple[str, str]] = []
        total = 0
        for message in data:
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
        return question, history


class FlagField(serializers.BooleanField):
    """Any JSON value, taken by its truth value (absent: false)."""

    def run_validation(self, data: Any = empty) -> bool:
        return False if data is empty else bool(data)


class StreamOptionsField(serializers.JSONField):
    def run_validation(self, data: Any = empty) -> bool:
        options = {} if data is empty else data or {}
        return bool(isinstance(options, dict) and options.get("include_usage"))


class ChatCompletionSerializer(serializers.Serializer):
    STATUS = {"model_not_found": 404}  # OpenAI's status for an unknown model

    model = ModelField()
    n = OneChoiceField(required=False)
    tools = OfferedToolsField()
    functions = OfferedToolsField()
    tool_choice = NoForcedToolField()
    function_call = NoForcedToolField()
    messages = MessagesField()
    stream = FlagField(required=False)
    stream_options = StreamOptionsField(required=False)


def parse_body(raw: bytes) -> tuple[str, str, list[tuple[str, str]], bool, bool]:
    """(model, question, history pairs, stream, include usage) from a Chat Completions body."""
    body = validated(ChatCompletionSerializer, raw)
    question, history = body["messages"]
    return body["model"], question, history, body["stream"], body["stream_options"]
