"""The OpenAPI 3 description of the API (drf-spectacular), including the streaming endpoints.

drf-spectacular documents DRF views only. The streaming endpoints are plain async Django views
(DRF's views are sync, and a sync iterator would be buffered whole under ASGI), so each is
described here by a documentation-only DRF view: its methods carry the schema and never run. The
preprocessing hook puts them in place of the real views, by URL name, when the schema is built.
The event stream itself is text/event-stream; its events are specified in docs/sse-protocol.md.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme, TokenRefreshSerializerExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.views import APIView

from evi360 import parsing
from streaming.api.bodies import StreamQuerySerializer
from streaming.api.sessions import SessionDetail, SessionList, SessionSerializer
from streaming.models import Status

PROTOCOL_DOC = "docs/sse-protocol.md"
EVENTS = (
    "`session` (session_id, conversation_id, language, model), then `citation` events (marker, source) "
    "each sent before the first token that contains its marker, `token` events (text), and exactly one "
    "terminal event: `done` (timings, usage, cited markers) or `error` (code, message, retryable). Every "
    "event has an `id:` (0, 1, 2, …) to resume after with `Last-Event-ID`."
)


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


# --- Shapes ------------------------------------------------------------------------------------


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


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


def _event_stream(description: str) -> OpenApiResponse:
    return OpenApiResponse(
        OpenApiTypes.STR,
        description=f"{description} Server-Sent Events: {EVENTS} Specified in {PROTOCOL_DOC}.",
    )


# Refusals every stream start can answer (docs/sse-protocol.md has the codes).
START_REFUSALS = {
    400: _error("Invalid JSON or field (`invalid_json`, `invalid_query`, `query_too_long`, …)."),
    401: _error("No or invalid credentials (`not_authenticated`)."),
    403: _error("Session caller without a valid CSRF token (`csrf_failed`)."),
    404: _error("`conversation_id` is not one of your conversations (`conversation_not_found`)."),
    415: _error("The body is not `application/json`."),
    429: _error("Too many questions (`rate_limited`); `Retry-After` gives the seconds to wait."),
    503: _error("Too many of your answers are streaming (`too_many_streams`)."),
}
QUERY_EXAMPLE = OpenApiExample(
    "A question", value={"query": "Hoe zwaar mag ik tillen?", "language": "auto"}, request_only=True
)


def _documentation_only(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("documentation-only view: the real endpoint is a plain async Django view")


class StreamQueryDoc(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="stream_query",
        tags=["stream"],
        summary="Ask a question and stream the answer",
        description=(
            "Create-and-stream in one request. The answer comes as Server-Sent Events (the default), "
            "or, with `Accept: application/json`, as one JSON document once it is finished (for "
            "clients that cannot read a stream; a failed answer is then an error: 504 `timeout`, 503 "
            f"`upstream_unavailable`, 502 `upstream_error`, 500 `internal`). See {PROTOCOL_DOC}."
        ),
        request=StreamQuerySerializer,
        examples=[QUERY_EXAMPLE],
        responses={
            (200, "text/event-stream"): _event_stream("The answer as it is written."),
            (200, "application/json"): FinishedAnswerSerializer,
            **START_REFUSALS,
            502: _error("JSON answers only: the model failed (`upstream_error`)."),
            504: _error("JSON answers only: the answer took too long (`timeout`)."),
        },
    )
    def post(self, request: Any) -> NoReturn:
        _documentation_only()


_DATE_OR_TIME = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
_SESSION_FILTERS = [
    OpenApiParameter("status", str, enum=list(Status.values), description="Only sessions with this status."),
    OpenApiParameter("since", _DATE_OR_TIME, description="Created at or after (ISO 8601 date or date-time)."),
    OpenApiParameter("until", _DATE_OR_TIME, description="Created before (ISO 8601 date or date-time)."),
]


class SessionsDoc(SessionList):
    parser_classes = [JSONParser]
    extra_methods = ()

    @extend_schema(
        operation_id="stream_sessions_list",
        tags=["stream"],
        summary="Your stream sessions, newest first",
        parameters=_SESSION_FILTERS,
    )
    def get(self, request: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _documentation_only()

    @extend_schema(
        operation_id="stream_sessions_create",
        tags=["stream"],
        summary="Start a stream to read from events_url",
        description=(
            "Same body and refusals as `stream_query`. Generation starts at once; read it from "
            "`events_url` (an EventSource), which can be reconnected to."
        ),
        request=StreamQuerySerializer,
        examples=[QUERY_EXAMPLE],
        responses={201: SessionCreatedSerializer, **START_REFUSALS},
    )
    def post(self, request: Any) -> NoReturn:
        _documentation_only()


class SessionDetailDoc(SessionDetail):
    extra_methods = ()

    @extend_schema(operation_id="stream_sessions_retrieve", tags=["stream"], summary="One of your sessions")
    def get(self, request: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _documentation_only()

    @extend_schema(
        operation_id="stream_sessions_stop",
        tags=["stream"],
        summary="Stop a running stream",
        request=None,
        responses={
            202: CancellingSerializer,
            401: _error("No or invalid credentials."),
            403: _error("Session caller without a valid CSRF token."),
            404: _error("Not one of your sessions."),
            409: _error("The stream is not running (`not_running`)."),
        },
    )
    def delete(self, request: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _documentation_only()


class SessionEventsDoc(APIView):
    serializer_class = SessionSerializer

    @extend_schema(
        operation_id="stream_sessions_events",
        tags=["stream"],
        summary="Read (or resume) a session's event stream",
        description=(
            "Every event from the first, or, with `Last-Event-ID` (EventSource sends it when it "
            "reconnects) or `?last_event_id=`, every event after that one; then live until the "
            f"terminal event. See {PROTOCOL_DOC}."
        ),
        parameters=[
            OpenApiParameter(
                "Last-Event-ID",
                {"type": "integer", "minimum": 0, "maximum": parsing.MAX_COUNT},
                OpenApiParameter.HEADER,
                description="Resume after the event with this id.",
            ),
            OpenApiParameter(
                "last_event_id",
                {"type": "integer", "minimum": 0, "maximum": parsing.MAX_COUNT},
                description="As the header, for clients that cannot set it.",
            ),
        ],
        responses={
            (200, "text/event-stream"): _event_stream("The session's events."),
            204: OpenApiResponse(
                description="The stream has ended and `Last-Event-ID` is its terminal event (or later): "
                "nothing is left, and EventSource stops reconnecting."
            ),
            400: _error("`last_event_id` is not an event id (`invalid_last_event_id`)."),
            401: _error("No or invalid credentials."),
            404: _error("Not one of your sessions."),
            410: _error("The stream's events are no longer kept; its answer is in the sessions API."),
        },
    )
    def get(self, request: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _documentation_only()


# The plain views, by URL name, and the documentation-only view that describes each.
DOCUMENTED = {
    "stream_query": StreamQueryDoc,
    "session_list": SessionsDoc,
    "session_detail": SessionDetailDoc,
    "session_events": SessionEventsDoc,
}


def _patterns(patterns: list[Any], prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append((prefix + str(pattern.pattern), pattern))
    return found


def add_streaming_endpoints(endpoints: list[tuple[str, str, str, Any]]) -> list[tuple[str, str, str, Any]]:
    """drf-spectacular preprocessing hook: the plain streaming views, described by their
    documentation-only views, at the real views' paths."""
    from drf_spectacular.generators import EndpointEnumerator

    enumerator = EndpointEnumerator()
    added = []
    for regex, pattern in _patterns(get_resolver().url_patterns):
        doc_view = DOCUMENTED.get(pattern.name or "")
        if doc_view is None:
            continue
        callback = doc_view.as_view()
        path = enumerator.get_path_from_regex(regex)
        for method in enumerator.get_allowed_methods(callback):
            added.append((path, regex, method, callback))
    return endpoints + added


# --- The event stream ------------------------------------------------------------------------
# One schema per SSE event, as the wire carries it (streaming/engine/events.py writes it): `event` names
# the type, `id` is its sequence number, `data` is one line of JSON of the type's shape.

_NULLABLE_INT = {"type": ["integer", "null"]}
EVENT_DATA: dict[str, dict[str, Any]] = {
    "session": {
        "properties": {
            "session_id": {"type": "string", "format": "uuid"},
            "conversation_id": {"type": ["string", "null"], "format": "uuid"},
            "language": {"enum": ["nl", "en"]},
            "model": {"type": "string"},
        },
    },
    "citation": {
        "properties": {
            "marker": {"type": "integer", "minimum": 1},
            "source": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "title": {"type": "string"},
                    "url": {"type": "string"},
                    "snippet": {"type": "string"},
                },
                "required": ["id", "title", "url", "snippet"],
            },
        },
    },
    "token": {"properties": {"text": {"type": "string", "minLength": 1}}},
    "done": {
        "properties": {
            "session_id": {"type": "string", "format": "uuid"},
            "status": {"const": "completed"},
            "ttft_ms": _NULLABLE_INT,
            "duration_ms": {"type": "integer"},
            "input_tokens": {"type": "integer"},
            "output_tokens": {"type": "integer"},
            "citations": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "error": {
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "retryable": {"type": "boolean"},
        },
    },
}


def _event_schemas() -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {}
    for event, data in EVENT_DATA.items():
        name = f"{event.capitalize()}EventData"
        schemas[name] = {"type": "object", **data, "required": list(data["properties"])}
        schemas[f"{event.capitalize()}Event"] = {
            "type": "object",
            "properties": {
                "event": {"const": event},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": f"#/components/schemas/{name}"},
                },
            },
            "required": ["event", "id", "data"],
        }
    schemas["StreamEvent"] = {
        "description": f"One Server-Sent Event of the answer stream ({PROTOCOL_DOC}).",
        "oneOf": [{"$ref": f"#/components/schemas/{event.capitalize()}Event"} for event in EVENT_DATA],
    }
    return schemas


_ERROR_REF = {"$ref": "#/components/schemas/Error"}
# What Python's str.strip() removes (every character whose isspace() is true), spelled out: the
# schema's regex dialect (ECMA-262) and the fuzz's reading of `\s` each leave some of them out.
STRIPPED = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# No NUL (DRF refuses it; PostgreSQL cannot store it), and something that DRF's trimming leaves.
NOT_BLANK = rf"^[^\x00]*[^\x00{STRIPPED}][^\x00]*$"
_COMMON_ERRORS = {
    "400": "The request is not valid (`invalid_request`, `invalid_json`, …).",
    "401": "No or invalid credentials (`not_authenticated`).",
    "404": "Not found, not yours, or a page past the last (`not_found`): others' objects are never shown.",
    "429": "Too many failed logins for this username or from this address (`too_many_login_attempts`); "
    "`Retry-After` gives the seconds to wait.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds to wait.",
        "required": True,
    }
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the SSE event schemas, and every API operation
    documents the JSON errors it can answer (our one error shape), so clients and the schema
    fuzz know them."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            # DRF trims strings: one that is only white space is as blank as an empty one.
            if prop.get("type") == "string" and prop.get("minLength") == 1 and "pattern" not in prop:
                prop["pattern"] = NOT_BLANK
    schemas.update(_event_schemas())
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for response in responses.values():
                if stream := response.get("content", {}).get("text/event-stream"):
                    stream["schema"] = {"$ref": "#/components/schemas/StreamEvent"}
            wanted = ["400", "401"]
            if "{" in path or any(p["name"] == "page" for p in operation.get("parameters", [])):
                wanted.append("404")
            if path == reverse("token_obtain"):  # login throttling (streaming/access/login_throttling.py)
                wanted.append("429")
            for status in wanted:
                if status not in responses:
                    responses[status] = {
                        "content": {"application/json": {"schema": _ERROR_REF}},
                        "description": _COMMON_ERRORS[status],
                        **({"headers": _RETRY_AFTER} if status == "429" else {}),
                    }
    return result
