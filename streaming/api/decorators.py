"""The checks an endpoint makes before its work, in one order: the method (405), the
credentials (401), CSRF for session callers (403), the content type (415). Then the view runs;
an ``ApiError`` it raises is answered in the endpoint family's shape (ours or OpenAI's)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from evi360.errors import ApiError
from streaming.access.auth import Caller, csrf_problem, identify

View = Callable[..., Awaitable[HttpResponse]]


@dataclass(frozen=True)
class Family:
    """How an API family answers refusals, and whom it lets in."""

    render: Callable[[ApiError], HttpResponse]
    refuse: Callable[[Caller], ApiError]  # the 401 for a caller it does not let in
    sessions: bool  # whether a session cookie is a credential


API = Family(
    render=ApiError.response,
    refuse=lambda caller: ApiError(
        401,
        "not_authenticated",
        caller.problem or "Log in or send 'Authorization: Bearer <access token>'.",
        {"WWW-Authenticate": 'Bearer realm="api"'},
    ),
    sessions=True,
)
OPENAI = Family(
    render=ApiError.openai_response,
    refuse=lambda caller: ApiError(
        401, "invalid_api_key", caller.problem or "Send 'Authorization: Bearer <API key>'."
    ),
    sessions=False,  # bearer tokens only: no cookies, so no CSRF
)


def authorize(
    method: str,
    *,
    family: Family = API,
    csrf: bool = False,
    json_body: bool = False,
    user_later: bool = False,
    otherwise: Callable[..., HttpResponse] | None = None,
) -> Callable[[View], View]:
    """Wrap ``view(request, caller, *args, **kwargs)``: answer ``method`` requests only (others go
    to the sync view ``otherwise``, e.g. DRF's, or are a 405). ``csrf``: session callers need a
    CSRF token. ``json_body``: the body must be application/json. ``user_later``: a JWT's user is
    not read yet (``identify``); the caller then carries a claim. ``request.received_at`` is when
    the view was entered (a stream's time to first token counts from it)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            request.received_at = time.monotonic()  # type: ignore[attr-defined]
            if request.method != method:
                if otherwise is not None:
                    return await sync_to_async(otherwise)(request, *args, **kwargs)
                return family.render(ApiError(405, "method_not_allowed", f"Use {method}.", {"Allow": method}))
            try:
                caller = await identify(request, user_later=user_later)
                if (caller.user is None and caller.claim is None) or (
                    caller.via_session and not family.sessions
                ):
                    raise family.refuse(caller)
                if csrf and caller.via_session and (problem := csrf_problem(request)):
                    raise ApiError(403, "csrf_failed", f"CSRF check failed: {problem}")
                if json_body and request.content_type != "application/json":
                    raise ApiError(415, "unsupported_media_type", "Send the request as application/json.")
                return await view(request, caller, *args, **kwargs)
            except ApiError as refused:
                return family.render(refused)

        return wrapper

    return decorate
