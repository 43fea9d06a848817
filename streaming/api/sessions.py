"""The user's stream sessions and conversations, read through Django REST framework."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from evi360 import parsing
from streaming.engine.generate import snippet
from streaming.models import AnswerFeedback, Conversation, Reason, Status, StreamCitation, StreamSession


class CitedSourceSerializer(serializers.Serializer):
    """The source as the stream's `citation` event showed it (title and URL as they were then)."""

    id = serializers.IntegerField(source="source_id", allow_null=True)
    title = serializers.CharField()
    url = serializers.CharField()
    snippet = serializers.SerializerMethodField()
    passage = serializers.IntegerField(
        source="chunk_id", allow_null=True, help_text="The cited passage; null once it is gone."
    )
    page = serializers.IntegerField(
        allow_null=True, help_text="The passage's PDF page; null for other formats."
    )

    def get_snippet(self, citation: StreamCitation) -> str:
        # From the copy kept with the citation: it outlives the passage (a deleted or replaced source).
        return snippet(citation.text)


class CitationSerializer(serializers.Serializer):
    marker = serializers.IntegerField()
    offset = serializers.IntegerField(help_text="Where in the answer the marker first appears.")
    source = CitedSourceSerializer(source="*")


class FeedbackSerializer(serializers.ModelSerializer):
    """The asker's 👍/👎 on the answer, given and changed at the session's feedback URL."""

    class Meta:
        model = AnswerFeedback
        fields = ["rating", "reasons", "comment", "created_at", "updated_at"]

    reasons = serializers.ListField(child=serializers.ChoiceField(choices=Reason.values))


class SessionSerializer(serializers.ModelSerializer):
    citations = CitationSerializer(many=True, read_only=True)
    feedback = FeedbackSerializer(read_only=True, allow_null=True, help_text="The asker's 👍/👎, or null.")
    conversation_id = serializers.UUIDField(read_only=True, allow_null=True)
    model = serializers.CharField(source="model_name")
    regenerates = serializers.UUIDField(
        source="regenerates_id",
        read_only=True,
        allow_null=True,
        help_text="The earlier session of the conversation this one answers again (Regenerate).",
    )

    class Meta:
        model = StreamSession
        fields = [
            "id",
            "conversation_id",
            "query",
            "language",
            "model",
            "client_kind",
            "status",
            "error_code",
            "error_message",
            "created_at",
            "first_token_at",
            "finished_at",
            "ttft_ms",
            "duration_ms",
            "token_events",
            "input_tokens",
            "output_tokens",
            "answer",
            "citations",
            "regenerates",
            "feedback",
        ]


class SessionPagination(PageNumberPagination):
    """Pages of 20 (``page_size`` up to 100). A malformed ``page`` or ``page_size`` is a 400, not
    silently the default; a page past the last is a 404."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def _positive(self, request: Any, name: str) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        if not (count := parsing.parse_count(raw)):
            digits = parsing.MAX_COUNT_DIGITS
            raise ValidationError({name: f"must be a positive integer of at most {digits} digits"})
        return count

    def get_page_size(self, request: Any) -> int:
        size = self._positive(request, self.page_size_query_param)
        if size is not None and size > self.max_page_size:
            raise ValidationError({self.page_size_query_param: f"must be at most {self.max_page_size}"})
        return size or self.page_size

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        self._positive(request, self.page_query_param)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            parameter["schema"]["maximum"] = parsing.MAX_COUNT
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
        return parameters


# What a session's serializer reads besides the session: its citations and its feedback.
CITATIONS = ("citations", "feedback")


class _OwnSessions:
    serializer_class = SessionSerializer
    extra_methods: tuple[str, ...] = ()

    @property
    def allowed_methods(self) -> list[str]:
        return [*super().allowed_methods, *self.extra_methods]  # type: ignore[misc]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        # Another user's session is simply not there: 404, not 403.
        return StreamSession.objects.of_user(self.request.user).prefetch_related(*CITATIONS)


class SessionList(_OwnSessions, generics.ListAPIView):
    """Filters: ``status``, ``since`` and ``until`` (ISO 8601 date or date-time)."""

    pagination_class = SessionPagination
    # POST (start a stream) is served by the async view in front of this one; Allow says so too.
    extra_methods = ("POST",)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = super().get_queryset()
        params = self.request.query_params
        if (status := params.get("status")) is not None:
            if status not in Status.values:
                raise ValidationError({"status": f"must be one of: {', '.join(Status.values)}"})
            queryset = queryset.filter(status=status)
        for name, lookup in (("since", "created_at__gte"), ("until", "created_at__lt")):
            if (raw := params.get(name)) is not None:
                if (moment := parse_moment(raw)) is None:
                    raise ValidationError({name: "must be an ISO 8601 date or date-time"})
                queryset = queryset.filter(**{lookup: moment})
        return queryset


def parse_moment(raw: str) -> datetime | None:
    """An aware datetime in UTC from an ISO 8601 date (midnight, local time) or date-time; None for
    anything else, impossible dates (2024-02-30) and moments outside years 1-9999 once in UTC
    (9999-12-31T23:59:59-23:59), which the database could not take."""
    try:
        moment = parse_datetime(raw) or (
            datetime.combine(day, datetime.min.time()) if (day := parse_date(raw)) else None
        )
        if moment is None:
            return None
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


class SessionDetail(_OwnSessions, generics.RetrieveAPIView):
    # DELETE (stop) is served by the async view in front of this one; Allow says so too.
    extra_methods = ("DELETE",)


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ["id", "title", "created_at", "updated_at"]


class ConversationDetailSerializer(ConversationSerializer):
    turns = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "turns"]

    @extend_schema_field(SessionSerializer(many=True))
    def get_turns(self, conversation: Conversation) -> list[dict[str, Any]]:
        turns = conversation.turns.order_by("created_at").prefetch_related(*CITATIONS)
        return SessionSerializer(turns, many=True).data


class _OwnConversations:
    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Conversation.objects.filter(user=self.request.user)


class ConversationList(_OwnConversations, generics.ListAPIView):
    serializer_class = ConversationSerializer
    pagination_class = SessionPagination


class ConversationDetail(_OwnConversations, generics.RetrieveDestroyAPIView):
    """GET: the conversation with its turns and their citations. DELETE: the conversation goes;
    its turns stay in the stream log (detached) for the staff's review."""

    serializer_class = ConversationDetailSerializer


session_list_view = SessionList.as_view()
session_detail_view = SessionDetail.as_view()
