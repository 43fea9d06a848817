"""The OpenAPI 3 description of the API (drf-spectacular), including the streaming endpoints.

drf-spectacular documents DRF views only. The streaming endpoints are plain async Django views
(DRF's views are sync, and a sync iterator would be buffered whole under ASGI), so each is
described here by a documentation-only DRF view: its methods carry the schema and never run. The
preprocessing hook puts them in place of the real views, by URL name, when the schema is built.
The event stream itself is text/event-stream; its events are specified in docs/sse-protocol.md.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.views import APIView

from evi360 import parsing
from streaming.aisdk.request import ChatRequestSerializer
from streaming.api.bodies import FeedbackBodySerializer, StreamQuerySerializer
from streaming.api.schema.events import EVENTS, PROTOCOL_DOC, UI_MESSAGE_PROTOCOL_DOC
from streaming.api.schema.shapes import (
    CancellingSerializer,
    ChatStopSerializer,
    ErrorSerializer,
    FinishedAnswerSerializer,
    SessionCreatedSerializer,
)
from streaming.api.sessions import FeedbackSerializer, SessionDetail, SessionList, SessionSerializer
from streaming.models import Status


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


def _event_stream(description: str) -> OpenApiResponse:
    return OpenApiResponse(
        OpenApiTypes.STR,
        description=f"{description} Server-Sent Events: {EVENTS} Specified in {PROTOCOL_DOC}.",
    )


# Refusals every stream start can answer (docs/sse-protocol.md has the codes).
START_REFUSALS = {
    400: _error(
        "Invalid JSON or field (`invalid_json`, `invalid_query`, `query_too_long`, …), or a `query` "
        "that is not the regenerated session's (`query_mismatch`)."
    ),
    401: _error("No or invalid credentials (`not_authenticated`)."),
    403: _error("Session caller without a valid CSRF token (`csrf_failed`)."),
    404: _error(
        "`conversation_id` is not one of your conversations (`conversation_not_found`), or "
        "`regenerate` not one of your sessions in it (`session_not_found`)."
    ),
    409: _error("`regenerate` is still streaming (`session_running`)."),
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


class FeedbackDoc(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="stream_sessions_feedback",
        tags=["stream"],
        summary="Rate an answer (👍/👎), or change your rating",
        description=(
            "One feedback per session: sending it again replaces it (200). `reasons` only with "
            "`down`. Only a finished answer can be rated."
        ),
        request=FeedbackBodySerializer,
        examples=[
            OpenApiExample(
                "A 👎",
                value={"rating": "down", "reasons": ["incomplete"], "comment": "Mist de termijnen."},
                request_only=True,
            )
        ],
        responses={
            201: FeedbackSerializer,
            200: FeedbackSerializer,
            400: _error(
                "Invalid JSON or field (`invalid_rating`, `invalid_reasons`, `invalid_comment`, "
                "`comment_too_long`), or reasons with `up`."
            ),
            401: _error("No or invalid credentials."),
            403: _error("Session caller without a valid CSRF token."),
            404: _error("Not one of your sessions."),
            409: _error("The answer is still streaming (`session_running`)."),
            415: _error("The body is not `application/json`."),
        },
    )
    def post(self, request: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _documentation_only()

    @extend_schema(
        operation_id="stream_sessions_feedback_withdraw",
        tags=["stream"],
        summary="Withdraw your rating of an answer",
        request=None,
        responses={
            204: OpenApiResponse(description="Withdrawn."),
            401: _error("No or invalid credentials."),
            403: _error("Session caller without a valid CSRF token."),
            404: _error("Not one of your sessions, or not rated (`not_found`)."),
        },
    )
    def delete(self, request: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _documentation_only()


def _ui_message_stream(description: str) -> OpenApiResponse:
    return OpenApiResponse(
        {"$ref": "#/components/schemas/UIMessageStreamEvent"},
        description=f"{description} The AI SDK's UI message stream (header "
        f"`x-vercel-ai-ui-message-stream: v1`), specified in {UI_MESSAGE_PROTOCOL_DOC}.",
    )


CHAT_EXAMPLE = OpenApiExample(
    "What useChat sends",
    value={
        "id": "Xc2mAGF2wAc0TNtS",
        "messages": [
            {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Hoe zwaar mag ik tillen?"}]}
        ],
        "trigger": "submit-message",
    },
    request_only=True,
)


class ChatDoc(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="aisdk_chat",
        tags=["ai-sdk"],
        summary="Ask in a chat (the AI SDK's useChat), the answer as a UI message stream",
        description=(
            "The body `DefaultChatTransport` posts. `id` is the chat: a new id starts a conversation "
            "with it. The question is the last user message; the history is the chat's stored turns, "
            "not the client's messages. `trigger: regenerate-message` answers the last question "
            f"again. See {UI_MESSAGE_PROTOCOL_DOC}."
        ),
        request=ChatRequestSerializer,
        examples=[CHAT_EXAMPLE],
        responses={
            (200, "text/event-stream"): _ui_message_stream("The answer as it is written."),
            **START_REFUSALS,
            400: _error(
                "Invalid JSON or field (`invalid_chat_id`, `invalid_messages`, `unsupported_content`, …)."
            ),
            404: _error("The chat is another user's (`conversation_not_found`)."),
        },
    )
    def post(self, request: Any) -> NoReturn:
        _documentation_only()


class ChatStreamDoc(APIView):
    @extend_schema(
        operation_id="aisdk_chat_stream",
        tags=["ai-sdk"],
        summary="Resume a chat's running answer (useChat({resume: true}))",
        description="The running answer's stream from its start, from any worker.",
        responses={
            (200, "text/event-stream"): _ui_message_stream("The running answer, from its start."),
            204: OpenApiResponse(description="No answer of this chat is running (or no such chat yet)."),
            401: _error("No or invalid credentials."),
            404: _error("Another user's chat."),
        },
    )
    def get(self, request: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _documentation_only()


class ChatStopDoc(APIView):
    @extend_schema(
        operation_id="aisdk_chat_stop",
        tags=["ai-sdk"],
        summary="Stop a chat's running answer",
        request=None,
        responses={
            202: ChatStopSerializer,
            200: ChatStopSerializer,
            401: _error("No or invalid credentials."),
            403: _error("Session caller without a valid CSRF token."),
            404: _error("Not one of your chats."),
        },
    )
    def post(self, request: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _documentation_only()


# The plain views, by URL name, and the documentation-only view that describes each.
DOCUMENTED = {
    "stream_query": StreamQueryDoc,
    "session_list": SessionsDoc,
    "session_detail": SessionDetailDoc,
    "session_events": SessionEventsDoc,
    "session_feedback": FeedbackDoc,
    "aisdk_chat": ChatDoc,
    "aisdk_chat_stream": ChatStreamDoc,
    "aisdk_chat_stop": ChatStopDoc,
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
