"""Views for machines: Prometheus metrics and the load balancer's health check."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework.exceptions import AuthenticationFailed

from evi360.errors import error_response
from streaming.access.auth import bearer_token
from streaming.engine import agent, metrics


def _may_scrape(request: HttpRequest) -> bool:
    """Staff sessions, the bearer token from EVI360_METRICS_TOKEN, or an allowed client address."""
    token = settings.EVI360_METRICS_TOKEN
    try:
        presented = bearer_token(request.headers.get("Authorization"))
    except AuthenticationFailed:
        presented = None  # not the token; staff or the address may still be let in
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    if request.META.get("REMOTE_ADDR") in settings.EVI360_METRICS_ALLOWED_IPS:
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _may_scrape(request):
        return error_response(
            403, "forbidden", "Metrics are for staff, the metrics token, or the allowed addresses."
        )
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the cache answer and the model is configured; 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        cache.set("evi360:healthz", "1", 5)
        checks["cache"] = "ok" if cache.get("evi360:healthz") == "1" else "error: no round trip"
    except Exception as exc:
        checks["cache"] = f"error: {exc.__class__.__name__}"
    try:
        checks["model"] = f"ok: {agent.model_display_name()}"
    except Exception as exc:
        checks["model"] = f"error: {exc.__class__.__name__}"
    healthy = all(value.startswith("ok") for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "checks": checks}, status=200 if healthy else 503
    )
