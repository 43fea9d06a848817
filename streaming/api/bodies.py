"""Request bodies, declared once: each serializer both validates a body (for the view) and
describes it (for the OpenAPI schema). Its fields keep the API's own rules, codes and messages
(not DRF's): a refusal is an ``ApiError`` (400) with the first failing field's code."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from citations.language import SUPPORTED
from evi360 import parsing
from evi360.errors import ApiError
from streaming.models import AnswerFeedback, Rating, Reason

MAX_QUERY_CHARS = 4000
LANGUAGES = {"auto", *SUPPORTED}
# What Python's str.strip() removes (every character whose isspace() is true), spelled out: the
# schema's regex dialect (ECMA-262) and the fuzz's reading of `\s` each leave some of them out.
STRIPPED = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# No NUL (DRF refuses it; PostgreSQL cannot store it), and something that DRF's trimming leaves.
NOT_BLANK = rf"^[^\x00]*[^\x00{STRIPPED}][^\x00]*$"


def _refuse(code: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError(message, code=code)


class QueryField(serializers.CharField):
    """A question: a string that is not blank, at most ``max_length`` as sent (before strip()), no NUL."""

    def run_validation(self, data: Any = empty) -> str | None:
        if data is empty:  # allowed with ``regenerate`` only (``validated_question``)
            return None
        if not isinstance(data, str) or not data.strip():
            raise _refuse("invalid_query", "'query' must be a non-empty string.")
        if len(data) > MAX_QUERY_CHARS:
            raise _refuse("query_too_long", f"'query' is longer than {MAX_QUERY_CHARS} characters.")
        data = data.strip()
        if "\x00" in data:  # PostgreSQL cannot store it; nobody types it
            raise _refuse("invalid_query", "'query' must not contain NUL characters.")
        return data


class LanguageField(serializers.ChoiceField):
    """``auto`` (also when absent or null) or a supported language."""

    def run_validation(self, data: Any = empty) -> str:
        if data is empty or data is None:
            return "auto"
        if not isinstance(data, str) or data not in LANGUAGES:
            raise _refuse("invalid_language", "'language' must be one of: auto, nl, en.")
        return data


class IdField(serializers.UUIDField):
    """A UUID written as a string (any form ``uuid.UUID`` reads), or None when absent or null."""

    def run_validation(self, data: Any = empty) -> uuid.UUID | None:
        if data is empty or data is None:
            return None
        try:
            if isinstance(data, str):
                return uuid.UUID(data)
        except ValueError:
            pass
        raise _refuse(f"invalid_{self.field_name}", f"'{self.field_name}' must be a UUID.")


class StreamQuerySerializer(serializers.Serializer):
    query = QueryField(
        max_length=MAX_QUERY_CHARS,
        required=False,
        help_text="The question, in Dutch or English. Required unless `regenerate` is given.",
    )
    language = LanguageField(
        choices=["auto", "nl", "en"],
        required=False,
        allow_null=True,
        default="auto",
        help_text="`auto` (default): detected from the question.",
    )
    conversation_id = IdField(
        required=False,
        allow_null=True,
        help_text="Continue this conversation of yours; a new one is started when absent.",
    )

    regenerate = IdField(
        required=False,
        allow_null=True,
        help_text=(
            "Answer this earlier session of yours again, as a new session in its conversation, "
            "with the history it had (it and the turns after it leave the history). Its question "
            "is asked: `query` may be left out, and must equal it if given."
        ),
    )


class RatingField(serializers.ChoiceField):
    def run_validation(self, data: Any = empty) -> str:
        if not isinstance(data, str) or data not in Rating.values:
            raise _refuse("invalid_rating", "'rating' must be 'up' or 'down'.")
        return data


@extend_schema_field(
    {"type": "array", "items": {"enum": Reason.values, "type": "string"}, "uniqueItems": True, "maxItems": 5}
)
class ReasonsField(serializers.ListField):
    """Distinct reasons (an empty list when absent or null)."""

    def run_validation(self, data: Any = empty) -> list[str]:
        if data is empty or data is None:
            return []
        if not isinstance(data, list) or not all(isinstance(r, str) and r in Reason.values for r in data):
            raise _refuse("invalid_reasons", f"'reasons' must be a list of: {', '.join(Reason.values)}.")
        if len(set(data)) != len(data):
            raise _refuse("invalid_reasons", "'reasons' must not name a reason twice.")
        return data


# The length is checked once trimmed, as documented; the schema gives the simpler bound.
@extend_schema_field(
    {"type": "string", "maxLength": AnswerFeedback.MAX_COMMENT_CHARS, "pattern": r"^[^\x00]*$"}
)
class CommentField(serializers.CharField):
    """Free text, trimmed, at most ``AnswerFeedback.MAX_COMMENT_CHARS`` once trimmed, no NUL; ""
    when absent or null."""

    def run_validation(self, data: Any = empty) -> str:
        if data is empty or data is None:
            return ""
        if not isinstance(data, str):
            raise _refuse("invalid_comment", "'comment' must be a string.")
        data = data.strip()
        if len(data) > AnswerFeedback.MAX_COMMENT_CHARS:
            limit = AnswerFeedback.MAX_COMMENT_CHARS
            raise _refuse("comment_too_long", f"'comment' is longer than {limit} characters.")
        if "\x00" in data:
            raise _refuse("invalid_comment", "'comment' must not contain NUL characters.")
        return data


class FeedbackBodySerializer(serializers.Serializer):
    rating = RatingField(choices=Rating.values, help_text="👍 `up` or 👎 `down`.")
    reasons = ReasonsField(
        child=serializers.ChoiceField(choices=Reason.values),
        required=False,
        allow_null=True,
        max_length=len(Reason.values),
        help_text="Why 👎: distinct reasons, with `down` only.",
    )
    comment = CommentField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=AnswerFeedback.MAX_COMMENT_CHARS,
        help_text="Optional, at most 2000 characters once trimmed; no NUL.",
    )


def validated_question(raw: bytes) -> dict[str, Any]:
    """A question's body (``StreamQuerySerializer``), or an ``ApiError``: ``query`` may be left
    out only when ``regenerate`` names the session whose question is asked again."""
    body = validated(StreamQuerySerializer, raw)
    if body["query"] is None and body["regenerate"] is None:
        raise ApiError(400, "invalid_query", "'query' must be a non-empty string.")
    return body


def validated_feedback(raw: bytes) -> dict[str, Any]:
    """A feedback body (``FeedbackBodySerializer``), or an ``ApiError``: reasons come with a 👎 only."""
    body = validated(FeedbackBodySerializer, raw)
    if body["rating"] == Rating.UP and body["reasons"]:
        raise ApiError(400, "invalid_reasons", "'reasons' go with rating 'down' only.")
    return body


@functools.cache
def _fields(serializer_class: type[serializers.Serializer]) -> dict[str, serializers.Field]:
    return dict(serializer_class().fields)


def validated(serializer_class: type[serializers.Serializer], raw: bytes) -> dict[str, Any]:
    """A JSON object body's fields as ``serializer_class``'s fields validate them, or an
    ``ApiError``: ``invalid_json``, or the first failing field's code and message (``STATUS`` on
    the class maps a code to a status other than 400).

    The fields are bound once, not per request: a serializer instance deep-copies its declared
    fields, which costs far more than validating them (docs/performance.md). Fields here keep no
    state between calls."""
    body = parsing.loads(raw or b"")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    values = {}
    for name, field in _fields(serializer_class).items():
        try:
            values[name] = field.run_validation(body.get(name, empty))
        except serializers.ValidationError as exc:
            (first, *_) = exc.detail
            status = getattr(serializer_class, "STATUS", {}).get(first.code, 400)
            raise ApiError(status, first.code, str(first)) from None
    return values
