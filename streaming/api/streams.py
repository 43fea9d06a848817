"""The streaming endpoints: ask a question (SSE, or JSON for clients that wait), start a session
read from its ``events_url``, read a session's events, stop it.

The views are async (Django buffers a sync iterator whole under ASGI). They parse, check access,
open the session and start the generation, then return a response that only reads the session's
event log. Every refusal before the stream starts is a JSON error, never HTML, never 500.
"""

from __future__ import annotations

import time
import uuid

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from citations.language import SUPPORTED
from evi360 import parsing
from evi360.db import run_db
from evi360.errors import error_response
from streaming.access.auth import Caller, csrf_problem, identify
from streaming.api.responses import EventStreamResponse
from streaming.api.sessions import session_detail_view, session_list_view
from streaming.engine.events import http_status
from streaming.engine.start import StreamRefused, begin_stream
from streaming.eventlog import StreamRun, collect, lookup, sse_body
from streaming.models import ClientKind, StreamSession

MAX_QUERY_CHARS = 4000
LANGUAGES = {"auto", *SUPPORTED}


class BadRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_query(request: HttpRequest) -> tuple[str, str | None, uuid.UUID | None]:
    """(query, requested language or None for auto, conversation id) from a JSON body."""
    try:
        body = parsing.loads(request.body or b"")
    except parsing.JSONRefused as refused:
        raise BadRequest("invalid_json", str(refused)) from None
    if not isinstance(body, dict):
        raise BadRequest("invalid_json", "The request body must be a JSON object.")
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("invalid_query", "'query' must be a non-empty string.")
    # The limit is on what was sent, as the OpenAPI schema's maxLength says (not after strip()).
    if len(query) > MAX_QUERY_CHARS:
        raise BadRequest("query_too_long", f"'query' is longer than {MAX_QUERY_CHARS} characters.")
    query = query.strip()
    if "\x00" in query:  # PostgreSQL cannot store it; nobody types it
        raise BadRequest("invalid_query", "'query' must not contain NUL characters.")
    language = body.get("language", "auto")
    if language is None:
        language = "auto"
    if not isinstance(language, str) or language not in LANGUAGES:
        raise BadRequest("invalid_language", "'language' must be one of: auto, nl, en.")
    conversation_id = body.get("conversation_id")
    if conversation_id is not None:
        try:
            conversation_id = uuid.UUID(str(conversation_id)) if isinstance(conversation_id, str) else None
        except ValueError:
            conversation_id = None
        if conversation_id is None:
            raise BadRequest("invalid_conversation_id", "'conversation_id' must be a UUID.")
    return query, None if language == "auto" else language, conversation_id


def sse_response(run: StreamRun) -> EventStreamResponse:
    return EventStreamResponse(sse_body(run))


async def _caller_or_error(
    request: HttpRequest, *, check_csrf: bool, user_later: bool = False
) -> Caller | HttpResponse:
    caller = await identify(request, user_later=user_later)
    if caller.user is None and caller.claim is None:
        return error_response(
            401,
            "not_authenticated",
            caller.problem or "Log in or send 'Authorization: Bearer <access token>'.",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    if check_csrf and caller.via_session and (problem := csrf_problem(request)):
        return error_response(403, "csrf_failed", f"CSRF check failed: {problem}")
    return caller


async def _start_stream(
    request: HttpRequest, *, resume_grace: float = 0.0, keep_typed: bool = False
) -> StreamRun | HttpResponse:
    """Everything before a stream starts: access, input, rate limit, concurrency cap, the session
    row; then the generation task. Returns the run, or the JSON error that refuses it. A JWT's
    user is read with the session row (one trip to a database thread, not two), so a valid
    token whose user is gone or inactive is refused (401) after the body's checks."""
    received_at = time.monotonic()
    if request.method != "POST":
        return error_response(405, "method_not_allowed", "Use POST.", headers={"Allow": "POST"})
    caller = await _caller_or_error(request, check_csrf=True, user_later=True)
    if isinstance(caller, HttpResponse):
        return caller
    if request.content_type != "application/json":
        return error_response(415, "unsupported_media_type", "Send the request as application/json.")
    try:
        query, requested_language, conversation_id = parse_query(request)
    except BadRequest as exc:
        return error_response(400, exc.code, exc.message)

    try:
        return await begin_stream(
            request,
            caller.user or caller.claim,  # type: ignore[arg-type]
            query=query,
            requested_language=requested_language,
            conversation_id=conversation_id,
            client_kind=ClientKind.WEB if caller.via_session else ClientKind.API,
            received_at=received_at,
            resume_grace=resume_grace,
            keep_typed=keep_typed,
        )
    except StreamRefused as refused:
        return error_response(refused.status, refused.code, refused.message, headers=refused.headers)


@csrf_exempt  # CSRF applies to session callers only; it is checked in _start_stream, as DRF does.
async def stream_query(request: HttpRequest) -> HttpResponse:
    """POST a question, get the answer as SSE in the same response (REST clients); or, with
    ``Accept: application/json``, the finished answer as one JSON document."""
    accept = request.headers.get("Accept", "")
    as_json = "application/json" in accept and "text/event-stream" not in accept
    run = await _start_stream(request, keep_typed=as_json)
    if isinstance(run, HttpResponse):
        return run
    return await _finished_answer(run) if as_json else sse_response(run)


async def _finished_answer(run: StreamRun) -> JsonResponse:
    answer = await collect(run)
    if answer.done is None:
        error = answer.error
        code = error.code if error else "internal"
        return error_response(http_status(code), code, error.message if error else "The answer stopped.")
    done, session = answer.done, answer.session
    return JsonResponse(
        {
            "session_id": run.session_id,
            "conversation_id": session.conversation_id if session else None,
            "language": session.language if session else None,
            "model": session.model if session else None,
            "status": "completed",
            "answer": answer.text,
            "citations": [c.payload() for _, c in sorted(answer.citations.items())],
            "usage": {"input_tokens": done.input_tokens, "output_tokens": done.output_tokens},
            "ttft_ms": done.ttft_ms,
            "duration_ms": done.duration_ms,
        }
    )


@csrf_exempt
async def sessions(request: HttpRequest) -> HttpResponse:
    """GET: the caller's sessions (DRF). POST: start a stream whose events are read from
    ``events_url`` (the web page's EventSource), answered 201 at once."""
    if request.method != "POST":
        return await sync_to_async(session_list_view)(request)
    run = await _start_stream(request, resume_grace=settings.EVI360_RESUME_GRACE)
    if isinstance(run, HttpResponse):
        return run
    run.expect_reader(settings.EVI360_FIRST_READER_TIMEOUT)
    session_id = run.session_id
    return JsonResponse(
        {"session_id": session_id, "events_url": reverse("session_events", args=[session_id])}, status=201
    )


async def _own_session(
    request: HttpRequest, pk: uuid.UUID, *, check_csrf: bool
) -> StreamSession | HttpResponse:
    """The caller's session ``pk``, or the JSON error (401/403, or 404 for anyone else's)."""
    caller = await _caller_or_error(request, check_csrf=check_csrf)
    if isinstance(caller, HttpResponse):
        return caller
    owned = await run_db(lambda: StreamSession.objects.filter(pk=pk, user_id=caller.user.pk).first())
    return owned if owned is not None else error_response(404, "not_found", "Not found.")


async def session_events(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """The events of one of the caller's sessions, as SSE (for EventSource): running, or finished
    less than ``EVI360_EVENT_RETENTION`` ago. With ``Last-Event-ID`` (EventSource sends it when it
    reconnects) or ``?last_event_id=``, it resumes after that event; otherwise it starts from the
    first."""
    if request.method != "GET":
        return error_response(405, "method_not_allowed", "Use GET.", headers={"Allow": "GET"})
    owned = await _own_session(request, pk, check_csrf=False)
    if isinstance(owned, HttpResponse):
        return owned
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or ""
    last = parsing.parse_count(raw) if raw else -1
    if last is None:
        return error_response(
            400, "invalid_last_event_id", "'last_event_id' must be an event id (0, 1, 2, …)."
        )
    found = await lookup.events_of(str(pk), last + 1)
    if isinstance(found, lookup.Body):
        return EventStreamResponse(found.chunks)
    if isinstance(found, lookup.NoMoreEvents):
        return _no_more_events()
    detail = reverse("session_detail", args=[pk])
    response = error_response(
        410,
        "stream_ended",
        f"This stream's events are no longer kept (status: {owned.status}); its answer is at {detail}.",
    )
    response["Link"] = f'<{detail}>; rel="related"'
    return response


def _no_more_events() -> HttpResponse:
    """A reconnect after the terminal event: 204, which stops an EventSource for good (an empty
    200 would have it reconnect again and again)."""
    response = HttpResponse(status=204)
    del response["Content-Type"]
    return response


@csrf_exempt  # CSRF applies to session callers only; checked in _caller_or_error
async def session_detail(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """GET: one of the caller's sessions (DRF). DELETE: stop it now, if it is still running.

    Closing an EventSource is not a reliable stop signal: a browser may keep reading ("draining")
    a short remaining response to reuse the connection, so the page's stop button says DELETE."""
    if request.method != "DELETE":
        return await sync_to_async(session_detail_view)(request, pk=pk)
    owned = await _own_session(request, pk, check_csrf=True)
    if isinstance(owned, HttpResponse):
        return owned
    if not await lookup.stop(str(pk)):
        return error_response(409, "not_running", f"This stream is not running (status: {owned.status}).")
    return JsonResponse({"session_id": str(pk), "status": "cancelling"}, status=202)
