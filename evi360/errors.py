"""One JSON error shape for the whole API: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


@csrf_exempt  # a wrong path is a 404 whatever the method, not a CSRF failure
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return error_response(404, "not_found", "Not found.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if _is_api(request):
        return error_response(403, "csrf_failed", f"CSRF check failed: {reason}")
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return error_response(404, "not_found", "Not found.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return error_response(500, "internal", "Something went wrong on our side.")
    from django.views.defaults import server_error

    return server_error(request)


_DRF_CODES = {
    Http404: "not_found",
    DjangoPermissionDenied: "forbidden",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "not_authenticated",
    drf_exceptions.PermissionDenied: "forbidden",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.ParseError: "invalid_json",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "rate_limited",
    drf_exceptions.ValidationError: "invalid_request",
}


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        if "detail" in detail:
            return _message(detail["detail"])
        return "; ".join(f"{field}: {_message(value)}" for field, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_message(item) for item in detail)
    return str(detail)


def drf_exception_handler_json(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF (and simplejwt) errors in our shape; the status and headers DRF chose are kept."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        response.status_code = 401
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    response.data = {"error": {"code": code, "message": _message(response.data)}}
    return response
