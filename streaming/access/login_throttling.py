"""Login throttling with django-axes: how its lockouts are answered, and the token endpoint's share.

axes counts failed logins in the database (settings: "Login throttling") and its backend refuses a
locked-out login before the password is checked. The pages (/accounts/login/, /admin/login/) are
answered by ``axes.middleware.AxesMiddleware`` through ``lockout_response``; simplejwt's token view
sends no login signals and its request is DRF's, so ``TokenObtainView`` (streaming/api/accounts.py) answers
its lockouts and resets the count on success itself.
"""

from __future__ import annotations

import math
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_credentials, get_failure_limit
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import ngettext

from evi360.errors import family_error

LOCKED_OUT = "too_many_login_attempts"


def client_address(request: HttpRequest) -> str | None:
    """The address logins are counted by: REMOTE_ADDR alone, never a forwarded header, which any
    client can set (axes would otherwise ask django-ipware, if installed)."""
    return request.META.get("REMOTE_ADDR")


def retry_after(request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
    """Seconds until the login of this request is allowed again: when the newest failure counted
    against each locked username or address has expired (never earlier than the lockout ends)."""
    AxesProxyHandler.update_request(request)
    cool_off = get_cool_off(request)
    limit = get_failure_limit(request, credentials)
    ends = []
    for attempts in AxesProxyHandler.get_implementation().get_user_attempts(request, credentials):
        totals = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        if (totals["failures"] or 0) >= limit:
            ends.append(totals["last"] + cool_off)
    if not ends:
        return math.ceil(cool_off.total_seconds())
    return max(1, math.ceil((max(ends) - timezone.now()).total_seconds()))


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """axes' AXES_LOCKOUT_CALLABLE: a 429 with Retry-After, our JSON error under /api/, else a page.

    axes passes (request, response, credentials) or, from its async middleware, (request,
    credentials): the credentials it flagged the request with are read from the request instead."""
    credentials = getattr(request, "axes_credentials", None)
    seconds = retry_after(request, credentials)
    message = ngettext(
        "Too many failed login attempts. Try again in %(seconds)d second.",
        "Too many failed login attempts. Try again in %(seconds)d seconds.",
        seconds,
    ) % {"seconds": seconds}
    response = family_error(request, 429, LOCKED_OUT, message) or render(
        request, "registration/locked_out.html", {"minutes": math.ceil(seconds / 60)}, status=429
    )
    response["Retry-After"] = str(seconds)
    return response


def login_succeeded(request: HttpRequest, username: str) -> None:
    """Forget the failures of this username and of this address, as axes does on a page login."""
    AxesProxyHandler.update_request(request)
    AxesProxyHandler.get_implementation().reset_user_attempts(request, get_credentials(username))
