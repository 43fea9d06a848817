"""The body the AI SDK's ``DefaultChatTransport`` posts (``useChat``): ``{id, messages, trigger,
messageId}``, with the UIMessages' ``parts``. Only the chat id, the trigger and the last user
message's text are used: the history is the chat's stored turns, so a client cannot rewrite what
the model is told was said. Each field keeps its rule, code and message;
``streaming.api.bodies.validated`` reports the first that fails.

Parsed here rather than with ``pydantic_ai.ui.vercel_ai.request_types`` (``SubmitMessage``,
``RegenerateMessage``): those models refuse fields they do not know and would answer Pydantic's
errors, where a refusal here is one of our codes; and we read one message of the list."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from streaming.api.bodies import MAX_QUERY_CHARS, NOT_BLANK, validated

# The AI SDK's generateId: 16 alphanumerics; nanoid's alphabet adds "_" and "-". A UUID fits too.
CHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
SUBMIT = "submit-message"
REGENERATE = "regenerate-message"
ROLES = ("system", "user", "assistant")
# The messages the client sends: its whole chat, each time. Bounded apart from the body's size.
MAX_MESSAGES = 1000


def _refused(message: str, code: str) -> serializers.ValidationError:
    return serializers.ValidationError(message, code=code)


def valid_chat_id(value: Any) -> bool:
    return isinstance(value, str) and CHAT_ID.fullmatch(value) is not None


@extend_schema_field({"type": "string", "pattern": f"^{CHAT_ID.pattern}$"})
class ChatIdField(serializers.CharField):
    def run_validation(self, data: Any = empty) -> str:
        if not valid_chat_id(data):
            raise _refused(
                "'id' (the chat id) must be 1 to 128 letters, digits, '_' or '-'.", "invalid_chat_id"
            )
        return data


@extend_schema_field({"type": "string", "enum": [SUBMIT, REGENERATE]})
class TriggerField(serializers.ChoiceField):
    """``submit-message`` (also when absent) or ``regenerate-message``."""

    def run_validation(self, data: Any = empty) -> str:
        if data is empty:
            return SUBMIT
        if data not in (SUBMIT, REGENERATE):
            raise _refused(f"'trigger' must be '{SUBMIT}' or '{REGENERATE}'.", "invalid_trigger")
        return data


@extend_schema_field({"type": ["string", "null"], "maxLength": 128})
class MessageIdField(serializers.CharField):
    """The message to regenerate (the AI SDK sends it with ``regenerate-message``), or None."""

    def run_validation(self, data: Any = empty) -> str | None:
        if data is empty or data is None:
            return None
        if not isinstance(data, str) or len(data) > 128:
            raise _refused("'messageId' must be a string of at most 128 characters.", "invalid_message_id")
        return data


def _question(message: dict[str, Any]) -> str:
    """The text of a user message: one text part (what ``sendMessage({text})`` sends)."""
    parts = message["parts"]
    if len(parts) != 1 or not isinstance(parts[0], dict) or parts[0].get("type") != "text":
        raise _refused(
            "A user message must be one text part: files and other parts are not supported.",
            "unsupported_content",
        )
    text = parts[0].get("text")
    if not isinstance(text, str):
        raise _refused("A text part needs 'text', a string.", "invalid_messages")
    # The limit is on what was sent, as on the REST API (not after strip()).
    if len(text) > MAX_QUERY_CHARS:
        raise _refused(f"A question is longer than {MAX_QUERY_CHARS} characters.", "query_too_long")
    if "\x00" in text:  # as the REST API's query: PostgreSQL cannot store it; nobody types it
        raise _refused("A question must not contain NUL characters.", "invalid_query")
    if not text.strip():
        raise _refused("A user message has no text.", "invalid_messages")
    return text.strip()


# Each rule of the messages, as JSON Schema (the OpenAPI description, which the schema fuzz holds
# the server to). "The last user message" cannot be said in JSON Schema, so every user message
# is held to what the question must be; the others (the assistant's) are not read.
_TEXT_PART = {
    "type": "object",
    "properties": {
        "type": {"const": "text"},
        "text": {"type": "string", "maxLength": MAX_QUERY_CHARS, "pattern": NOT_BLANK},
    },
    "required": ["type", "text"],
}
_MESSAGE = {
    "type": "object",
    "properties": {"role": {"type": "string", "enum": list(ROLES)}, "parts": {"type": "array"}},
    "required": ["role", "parts"],
    "if": {"properties": {"role": {"const": "user"}}},
    "then": {"properties": {"parts": {"type": "array", "items": _TEXT_PART, "minItems": 1, "maxItems": 1}}},
}
MESSAGES_SCHEMA = {
    "type": "array",
    "items": _MESSAGE,
    "minItems": 1,
    "maxItems": MAX_MESSAGES,
    "contains": {"properties": {"role": {"const": "user"}}, "required": ["role"]},
}


@extend_schema_field(MESSAGES_SCHEMA)
class MessagesField(serializers.ListField):
    """The UIMessages: the question is the last user message (messages after it are ignored)."""

    def run_validation(self, data: Any = empty) -> str:
        if not isinstance(data, list) or not data:
            raise _refused("'messages' must be a non-empty list of UIMessages.", "invalid_messages")
        if len(data) > MAX_MESSAGES:
            raise _refused(f"'messages' has more than {MAX_MESSAGES} messages.", "invalid_messages")
        questions = []
        for message in data:
            if (
                not isinstance(message, dict)
                or message.get("role") not in ROLES
                or not isinstance(message.get("parts"), list)
            ):
                raise _refused(
                    "Every message needs a role (system, user or assistant) and a list of parts.",
                    "invalid_messages",
                )
            if message["role"] == "user":
                questions.append(_question(message))
        if not questions:
            raise _refused("'messages' has no user message: there is no question.", "invalid_messages")
        return questions[-1]


class ChatRequestSerializer(serializers.Serializer):
    id = ChatIdField(help_text="The chat: our conversation, started when the id is new.")
    messages = MessagesField(
        child=serializers.DictField(),
        help_text="UIMessages. The last user message is the question: one text part (every user "
        "message is held to that). The others are not read: the history is the chat's stored turns.",
    )
    trigger = TriggerField(
        choices=[SUBMIT, REGENERATE],
        required=False,
        help_text="`regenerate-message`: answer the last question again; the answer it replaces "
        "leaves the history.",
    )
    messageId = MessageIdField(
        required=False,
        allow_blank=True,
        help_text="With `regenerate-message`: the answer to replace (its `start` chunk's `messageId`).",
    )


@dataclass(frozen=True)
class ChatRequest:
    chat_id: str
    question: str
    regenerate: bool
    message_id: str | None


def parse_body(raw: bytes) -> ChatRequest:
    body = validated(ChatRequestSerializer, raw)
    return ChatRequest(body["id"], body["messages"], body["trigger"] == REGENERATE, body["messageId"])
