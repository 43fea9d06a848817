"""Django's own middleware, run on the event loop instead of in a thread.

Under ASGI, Django's ``MiddlewareMixin`` calls every ``process_request``, ``process_view`` and
``process_response`` through ``sync_to_async``: one thread hop each, about fifteen per request
for the stack in settings, in a thread created for that request. The hooks used here do no I/O
except in two cases, and those still go to a thread: saving a modified session, and storing
flash messages (which reads the session). Everything else runs inline, which takes a stream
start's share of thread hops from ~15 to the database calls it actually makes.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from csp import middleware as csp
from csp.constants import NONE
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csrf, locale, security


class InlineMixin:
    """``MiddlewareMixin``'s async path without the thread hops (``response_needs_io`` says when
    ``process_response`` must still run in a thread)."""

    get_response: Any

    def response_needs_io(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.response_needs_io(request, response):
                process_response = sync_to_async(self.process_response, thread_sensitive=True)
                response = await process_response(request, response)
            else:
                response = self.process_response(request, response)
        return response


class SecurityMiddleware(InlineMixin, security.SecurityMiddleware):
    pass


# What is not HTML (the API's JSON and SSE, the schema, Swagger UI's init script) loads nothing and
# is framed by no one, whatever it contains.
NOT_HTML_POLICY = {"default-src": [NONE], "frame-ancestors": [NONE]}


class CSPMiddleware(InlineMixin, csp.CSPMiddleware):
    """django-csp's (no I/O: a header built from settings, a nonce made only if a template asks),
    with ``NOT_HTML_POLICY`` for responses that are not HTML. Only headers are set: streamed
    bodies are left alone."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> csp.PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        html = response.get("Content-Type", "").startswith("text/html")
        if parts.config is None and not report_only and not html:
            parts.config = NOT_HTML_POLICY
        return parts


class SessionMiddleware(InlineMixin, sessions.SessionMiddleware):
    def response_needs_io(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class LocaleMiddleware(InlineMixin, locale.LocaleMiddleware):
    pass


class CommonMiddleware(InlineMixin, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(InlineMixin, csrf.CsrfViewMiddleware):
    # The view hook too: Django's handler would wrap a sync one in sync_to_async.
    async def process_view(  # type: ignore[override]
        self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any
    ) -> HttpResponseBase | None:
        return super().process_view(request, callback, callback_args, callback_kwargs)

    def response_needs_io(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return settings.CSRF_USE_SESSIONS  # the token then lives in the session


class AuthenticationMiddleware(InlineMixin, auth.AuthenticationMiddleware):
    pass  # request.user stays lazy: nothing is read until a view asks


class MessageMiddleware(InlineMixin, messages.MessageMiddleware):
    def response_needs_io(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(InlineMixin, clickjacking.XFrameOptionsMiddleware):
    pass
