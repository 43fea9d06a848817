"""Who is asking: a JWT bearer token, or a Django session (then CSRF applies, as in DRF)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError


@dataclass(frozen=True)
class Caller:
    user: AbstractBaseUser | None
    via_session: bool = False
    # Why a presented credential was refused (None when nothing was presented).
    problem: str | None = None


def authenticate(request: HttpRequest) -> Caller:
    """Sync (it reads the database): call it through ``run_db``."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Caller(None, problem="The Authorization header must be 'Bearer <access token>'.")
        jwt = JWTAuthentication()
        try:
            user = jwt.get_user(jwt.get_validated_token(token.strip().encode()))
        except (InvalidToken, TokenError):
            return Caller(None, problem="The access token is invalid or has expired.")
        except AuthenticationFailed as exc:  # unknown or inactive user
            return Caller(None, problem=str(exc.detail))
        return Caller(user)
    user = get_user(request)
    if user.is_authenticated and user.is_active:
        return Caller(user, via_session=True)
    return Caller(None)


class _CSRFCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> str:  # type: ignore[override]
        return reason


def csrf_problem(request: HttpRequest) -> str | None:
    """Why the request fails Django's CSRF check, or None when it passes."""
    check = _CSRFCheck(lambda r: None)  # type: ignore[arg-type, return-value]
    check.process_request(request)
    return check.process_view(request, lambda r: None, (), {})  # type: ignore[return-value]
