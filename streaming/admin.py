"""The stream log in the admin: read-only evidence, and the streaming dashboard."""

from __future__ import annotations

import io

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from streaming.models import AnswerFeedback, ApiKey, Rating, StreamCitation, StreamSession
from streaming.monitoring import charts, stats
from streaming.store import feedback_export
from streaming.text import shorten


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"


class _SessionPartInline:
    """A read-only part of a session's log page: whoever may read a session may read it."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm("streaming.view_streamsession")


class StreamCitationInline(_SessionPartInline, admin.TabularInline):
    model = StreamCitation
    fields = ["marker", "title", "url", "page", "text", "offset", "source", "chunk"]
    readonly_fields = fields


class AnswerFeedbackInline(_SessionPartInline, admin.StackedInline):
    """The asker's 👍/👎 on the session's answer."""

    model = AnswerFeedback
    fields = ["rating", "reasons", "comment", "created_at", "updated_at"]
    readonly_fields = fields
    max_num = 1


class FeedbackFilter(admin.SimpleListFilter):
    title = "feedback"
    parameter_name = "feedback"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("up", "👍"), ("down", "👎"), ("any", "rated"), ("none", "not rated")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value in Rating.values:
            return queryset.filter(feedback__rating=value)
        if value in ("any", "none"):
            return queryset.filter(feedback__isnull=value == "none")
        return queryset


FEEDBACK_MARKS = {Rating.UP: "👍", Rating.DOWN: "👎"}


@admin.register(StreamSession)
class StreamSessionAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "user",
        "language",
        "model_name",
        "status_badge",
        "ttft_ms",
        "duration_ms",
        "output_tokens",
        "feedback_mark",
        "short_query",
    ]
    list_filter = [
        "status",
        FeedbackFilter,
        "language",
        "model_name",
        "client_kind",
        "created_at",
        "error_code",
    ]
    search_fields = ["query", "user__username", "user__email"]
    list_select_related = ["user", "feedback"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in StreamSession._meta.fields]
    fields = readonly_fields
    inlines = [StreamCitationInline, AnswerFeedbackInline]
    ordering = ["-created_at"]
    actions = ["export_feedback_jsonl", "export_feedback_csv"]

    class Media:
        css = {"all": ["css/admin.css"]}  # no style attributes: the CSP allows none

    # Logs are evidence: nobody adds or edits them; only superusers may delete.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: StreamSession) -> str:
        return format_html(
            '<span class="status-badge status-{}">{}</span>',  # colours: static/css/admin.css
            obj.status,
            obj.status,
        )

    @admin.display(description="query")
    def short_query(self, obj: StreamSession) -> str:
        return shorten(obj.query, 60)

    @admin.display(description="feedback", ordering="feedback__rating")
    def feedback_mark(self, obj: StreamSession) -> str:
        feedback = getattr(obj, "feedback", None)  # absent: the reverse one-to-one raises
        return FEEDBACK_MARKS.get(feedback.rating, "—") if feedback is not None else "—"

    def _export(self, queryset: QuerySet, fmt: str) -> HttpResponse:
        out = io.StringIO()
        rows = feedback_export.records(feedback_export.feedback_given(session_ids=queryset.values("pk")))
        feedback_export.write(rows, fmt, out)
        content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return HttpResponse(
            out.getvalue(),
            content_type=f"{content_type}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="feedback-{stamp}.{fmt}"'},
        )

    @admin.action(
        description="Export the feedback of the selected sessions (JSON Lines)", permissions=["view"]
    )
    def export_feedback_jsonl(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return self._export(queryset, "jsonl")

    @admin.action(description="Export the feedback of the selected sessions (CSV)", permissions=["view"])
    def export_feedback_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return self._export(queryset, "csv")

    def get_urls(self):  # type: ignore[no-untyped-def]
        return [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="streaming_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        window = request.GET.get("window", "24h")
        if window not in stats.WINDOWS:
            window = "24h"
        until = timezone.now()
        since = until - stats.WINDOWS[window]
        summary = stats.summary(since, until)
        buckets = stats.timeline(since, until)
        unit = stats.bucket_unit(since, until)
        fmt = "%H:00" if unit == "hour" else "%d %b"
        labels = [timezone.localtime(b.start).strftime(fmt) for b in buckets]
        changelist = reverse("admin:streaming_streamsession_changelist")
        window_filter = {"created_at__gte": since.isoformat(), "created_at__lt": until.isoformat()}

        def filtered(**more: str) -> str:
            return f"{changelist}?{urlencode({**window_filter, **more})}"

        errors = [
            (code, count, f"{changelist}?{urlencode({**window_filter, 'error_code': code})}")
            for code, count in summary.errors
        ]
        rates = [
            (
                label,
                _percent(summary.rate(status)),
                f"{changelist}?{urlencode({**window_filter, 'status': status})}",
            )
            for label, status in (
                ("completed", "completed"),
                ("error", "error"),
                ("cancelled", "cancelled"),
                ("timeout", "timeout"),
            )
        ]
        feedback = [
            (rating, FEEDBACK_MARKS[rating], summary.feedback.get(rating, 0), filtered(feedback=rating))
            for rating in Rating
        ]
        latest_down = [
            (given, reverse("admin:streaming_streamsession_change", args=[given.session_id]))
            for given in stats.latest_down(since, until)
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Streaming dashboard",
            "opts": self.model._meta,
            "window": window,
            "windows": list(stats.WINDOWS),
            "summary": summary,
            "rates": rates,
            "errors": errors,
            "feedback": feedback,
            "down_rate": _percent(summary.down_rate()),
            "down_url": filtered(feedback=Rating.DOWN),
            "latest_down": latest_down,
            "unit": unit,
            "timeout_s": settings.EVI360_STREAM_TIMEOUT,
            "streams_chart": charts.streams_by_status(buckets, labels),
            "ttft_chart": charts.ttft_percentiles(buckets, labels),
            "feedback_chart": charts.feedback_by_rating(buckets, labels),
            "down_rate_chart": charts.down_rate(buckets, labels),
            "changelist_url": f"{changelist}?{urlencode(window_filter)}",
        }
        return TemplateResponse(request, "admin/streaming/dashboard.html", context)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "hint", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "hint"]
    readonly_fields = ["user", "name", "hint", "key_hash", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are created by their owners, who see them once

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} key(s) revoked.")
