"""The stream log in the admin: read-only evidence, and the streaming dashboard."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from streaming.models import ApiKey, StreamCitation, StreamSession
from streaming.monitoring import charts, stats
from streaming.text import shorten


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"


class StreamCitationInline(admin.TabularInline):
    model = StreamCitation
    fields = ["marker", "title", "url", "offset", "source", "chunk"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Whoever may read a session may read its citations.
        return request.user.has_perm("streaming.view_streamsession")


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
        "short_query",
    ]
    list_filter = ["status", "language", "model_name", "client_kind", "created_at", "error_code"]
    search_fields = ["query", "user__username", "user__email"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in StreamSession._meta.fields]
    fields = readonly_fields
    inlines = [StreamCitationInline]
    ordering = ["-created_at"]

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
        context = {
            **self.admin_site.each_context(request),
            "title": "Streaming dashboard",
            "opts": self.model._meta,
            "window": window,
            "windows": list(stats.WINDOWS),
            "summary": summary,
            "rates": rates,
            "errors": errors,
            "unit": unit,
            "timeout_s": settings.EVI360_STREAM_TIMEOUT,
            "streams_chart": charts.streams_by_status(buckets, labels),
            "ttft_chart": charts.ttft_percentiles(buckets, labels),
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
