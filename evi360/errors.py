"""One JSON error shape for the whole API: ``{"error": {"code": ..., "message": ...}}``; OpenAI's
under /v1/. Django's error handlers answer in these shapes there, never with an HTML page."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.handlers import asgi
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request, page_not_found, permission_denied, server_error
from rest_framework import exceptions as drf_exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response


class ApiError(Exception):
    """A refusal of a request: its status, code, message (for the client) and headers, rendered in
    the shape of the endpoint's family (``error_response`` or ``openai_error``)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        """In our shape (under /api/)."""
        return error_response(self.status, self.code, self.message, headers=self.headers)

    def openai_response(self) -> JsonResponse:
        """In OpenAI's shape (under /v1/)."""
        return openai_error(
            self.status, self.message, openai_kind(self.status), self.code, headers=self.headers
        )


def openai_kind(status: int) -> str:
    """OpenAI's error ``type`` for a status."""
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status, headers=headers)


def openai_error(
    status: int, message: str, kind: str, code: str | None = None, headers: dict | None = None
) -> JsonResponse:
    """OpenAI's error shape, for everything under /v1/."""
    return JsonResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status=status,
        headers=headers,
    )


def family_error(
    request: HttpRequest | str,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> HttpResponse | None:
    """The error in the shape of the request's (or path's) API family (ours under /api/, OpenAI's
    under /v1/); None elsewhere, where Django's pages answer."""
    path = request if isinstance(request, str) else request.path
    if path.startswith("/api/"):
        return error_response(status, code, message, headers=headers)
    if path.startswith("/v1/"):
        return openai_error(status, message, openai_kind(status), code, headers=headers)
    return None


@csrf_exempt  # a wrong path is a 404 whatever the method, not a CSRF failure
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return family_error(request, 404, "not_found", "Not found.") or page_not_found(request, Http404())


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return family_error(request, 403, "csrf_failed", f"CSRF check failed: {reason}") or (
        django_csrf_failure(request, reason)
    )


# Django answers these when a body is too large (DATA_UPLOAD_MAX_MEMORY_SIZE) or has too many
# form fields or files; they reach handler400 as SuspiciousOperation.
TOO_LARGE = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, TOO_LARGE):
        response = family_error(request, 413, "request_too_large", str(exception))
    else:
        response = family_error(request, 400, "bad_request", "Bad request.")
    return response or bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return family_error(request, 403, "forbidden", "Forbidden.") or permission_denied(request, exception)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return family_error(request, 404, "not_found", "Not found.") or page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    response = family_error(request, 500, "internal", "Something went wrong on our side.")
    return response or server_error(request)


class ASGIHandler(asgi.ASGIHandler):
    """Django's, with the errors it answers before any middleware or view (a query string that is
    not UTF-8: an empty text/html 400; a body too large: a text 413) in the API's shapes."""

    def create_request(self, scope: dict, body_file: Any) -> tuple[Any, HttpResponse | None]:
        request, response = super().create_request(scope, body_file)
        if response is not None:
            path = scope.get("path", "")
            if response.status_code == 413:
                mine = family_error(path, 413, "request_too_large", "The request body is too large.")
            else:
                mine = family_error(path, 400, "bad_request", "The request is not UTF-8 text.")
            response = mine or response
        return request, response


class JSONErrorsMixin:
    """For DRF views whose renderer is not JSON (the schema's YAML, Swagger UI's HTML): their
    errors (a wrong method, a throttle) are rendered as JSON, in our shape, all the same; so is
    OPTIONS' metadata, which Swagger UI's template renderer cannot render (a 500)."""

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(response, "exception", False) or request.method == "OPTIONS":
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


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
    # Imported here: DRF's views load its parsers (evi360.parsing), which import ApiError from here.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        response.status_code = 401
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    response.data = {"error": {"code": code, "message": _message(response.data)}}
    return response
