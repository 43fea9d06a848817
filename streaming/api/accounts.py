"""Logging in and out with JWTs (simplejwt's views, with login throttling)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.views import TokenBlacklistView, TokenObtainPairView

from streaming.access import login_throttling


class TokenObtainView(TokenObtainPairView):
    """Log in: an access and a refresh token for a username and password. After too many failed
    logins for a username or from an address, its logins are refused for a while (429,
    `too_many_login_attempts`, `Retry-After`); a successful login clears its failed attempts."""

    # simplejwt's view with login throttling (streaming/access/login_throttling.py); the 429 is added to
    # the schema by streaming/api/schema/errors.py.

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response | HttpResponse:
        try:
            response = super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            # Set on this (DRF) request by axes' backend or its failed-login handler.
            if getattr(request, "axes_locked_out", False):
                return login_throttling.lockout_response(request)
            raise
        login_throttling.login_succeeded(request, request.data[self.get_serializer_class().username_field])
        return response


class LogoutView(TokenBlacklistView):
    """Log out: the given refresh token is blacklisted, so it gives no more access tokens (those
    already issued expire on their own, after `JWT_ACCESS_MINUTES`)."""

    @extend_schema(
        summary="Log out: blacklist a refresh token",
        responses={204: OpenApiResponse(description="The refresh token is blacklisted.")},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=204)
