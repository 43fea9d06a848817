"""The schema's shapes: security schemes for our authentication classes, and the serializers
that describe responses the streaming views write by hand."""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme, TokenRefreshSerializerExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "streaming.access.auth.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API key (`evi_…`), made on the chat page's API keys page.",
        }


class JWTScheme(SimpleJWTScheme):
    # drf-spectacular's own extensions for simplejwt, for our subclasses (streaming/access/).
    target_class = "streaming.access.auth.BearerJWTAuthentication"


class TokenRefreshShape(TokenRefreshSerializerExtension):
    target_class = "streaming.access.tokens.TokenRefreshSerializer"


UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class StreamQueryShape(OpenApiSerializerExtension):
    """A question's body needs ``query``, or ``regenerate`` (the session whose question is asked
    again): a rule across fields, which DRF's fields cannot state."""

    target_class = "streaming.api.bodies.StreamQuerySerializer"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = super().map_serializer(auto_schema, direction)
        # Spelled out as a pattern too: a fuzzer that merges the ``anyOf`` keeps patterns, not formats.
        for name in ("conversation_id", "regenerate"):
            schema["properties"][name]["pattern"] = UUID_PATTERN
        schema["anyOf"] = [
            {"required": ["query"]},
            {"required": ["regenerate"], "properties": {"regenerate": {"type": "string"}}},
        ]
        return schema


class FeedbackBodyShape(OpenApiSerializerExtension):
    """The feedback body with its one rule across fields: reasons go with a 👎 only (the fuzz
    sends what the schema allows, and expects it taken)."""

    target_class = "streaming.api.bodies.FeedbackBodySerializer"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = super().map_serializer(auto_schema, direction)
        no_reasons = {"type": ["array", "null"], "maxItems": 0}
        schema["anyOf"] = [
            {"properties": {"rating": {"const": "down"}}},
            {"properties": {"reasons": no_reasons}},
        ]
        return schema


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class SessionCreatedSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    events_url = serializers.CharField(help_text="GET it (as an EventSource) to read the answer.")


class SourceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    url = serializers.CharField(allow_blank=True)
    snippet = serializers.CharField(allow_blank=True)
    passage = serializers.IntegerField(
        allow_null=True, help_text="The cited passage (our source page highlights it)."
    )
    page = serializers.IntegerField(
        allow_null=True, help_text="The passage's PDF page; null for other formats."
    )


class AnswerCitationSerializer(serializers.Serializer):
    marker = serializers.IntegerField()
    source = SourceSerializer()


class UsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()


class FinishedAnswerSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    conversation_id = serializers.UUIDField(allow_null=True)
    language = serializers.ChoiceField(choices=["nl", "en"])
    model = serializers.CharField()
    status = serializers.ChoiceField(choices=["completed"])
    answer = serializers.CharField(allow_blank=True)
    citations = AnswerCitationSerializer(many=True)
    usage = UsageSerializer()
    ttft_ms = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField()


class CancellingSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["cancelling"])


class ChatStopSerializer(serializers.Serializer):
    chat_id = serializers.CharField()
    session_id = serializers.UUIDField(allow_null=True, help_text="The answer stopped (202), or null (200).")
    status = serializers.ChoiceField(choices=["cancelling", "not_running"])
