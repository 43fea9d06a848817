"""The streaming endpoints: ask a question (SSE, or JSON for clients that wait), start a session
read from its ``events_url``, read a session's events, stop it.

The views are async (Django buffers a sync iterator whole under ASGI). They parse, check access,
open the session and start the generation, then return a response that only reads the session's
event log. Every refusal before the stream starts is a JSON error, never HTML, never 500.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from evi360 import parsing
from evi360.db import run_db
from evi360.errors import ApiError, error_response
from streaming.access.auth import Caller
from streaming.api.bodies import validated_question
from streaming.api.decorators import authorize
from streaming.api.responses import EventStreamResponse
from streaming.api.sessions import session_detail_view, session_list_view
from streaming.engine.events import http_status
from streaming.engine.start import begin_stream
from streaming.eventlog import StreamRun, collect, lookup, sse_body
from streaming.models import ClientKind, Status, StreamSession
from streaming.store import reads


@dataclass(frozen=True)
class Question:
    """A start's body, read: the question (None: the regenerated session's), the requested
    language (None: detected), the conversation and the session to answer again, if any."""

    query: str | None
    language: str | None
    conversation_id: uuid.UUID | None
    regenerate: uuid.UUID | None


def parse_query(request: HttpRequest) -> Question:
    body = validated_question(request.body)
    language = body["language"]
    return Question(
        body["query"], None if language == "auto" else language, body["conversation_id"], body["regenerate"]
    )


async def _regenerated(caller: Caller, question: Question) -> tuple[str, uuid.UUID]:
    """The question and conversation of the session ``question.regenerate`` answers again: the
    caller's, in ``conversation_id`` when that is given, finished, and asking the same question."""
    user_id = caller.user.pk if caller.user is not None else caller.claim.user_id  # type: ignore[union-attr]
    turn = await run_db(lambda: reads.own_turn(user_id, question.regenerate))
    if turn is None or turn[1] is None or question.conversation_id not in (None, turn[1]):
        raise ApiError(
            404, "session_not_found", "'regenerate' is not a session of yours in this conversation."
        )
    query, conversation_id, status = turn
    if status == Status.STREAMING:
        raise ApiError(409, "session_running", "That answer is still being written; stop it or wait.")
    if question.query is not None and question.query != query:
        raise ApiError(400, "query_mismatch", "'query' must be the regenerated session's question.")
    return query, conversation_id


def sse_response(run: StreamRun) -> EventStreamResponse:
    return EventStreamResponse(sse_body(run))


async def _start_stream(
    request: HttpRequest, caller: Caller, *, keep_typed: bool, resume_grace: float = 0.0
) -> StreamRun:
    """The body's checks, then the start (rate limit, concurrency cap, the session row, the
    generation task); a refusal is an ``ApiError``. A JWT's user is read with the session row (one
    trip to a database thread, not two), so a valid token whose user is gone or inactive is
    refused (401) after the body's checks."""
    question = parse_query(request)
    query, conversation_id = question.query, question.conversation_id
    if question.regenerate is not None:
        query, conversation_id = await _regenerated(caller, question)
    return await begin_stream(
        request,
        caller.user or caller.claim,  # type: ignore[arg-type]
        query=query,  # type: ignore[arg-type]
        requested_language=question.language,
        conversation_id=conversation_id,
        regenerates=question.regenerate,
        client_kind=ClientKind.WEB if caller.via_session else ClientKind.API,
        received_at=request.received_at,  # type: ignore[attr-defined]
        resume_grace=resume_grace,
        keep_typed=keep_typed,
    )


# The checks of both endpoints that start a stream.
_starts = functools.partial(authorize, "POST", csrf=True, json_body=True, user_later=True)


@csrf_exempt  # CSRF applies to session callers only; authorize checks it, as DRF does.
@_starts()
async def stream_query(request: HttpRequest, caller: Caller) -> HttpResponse:
    """POST a question, get the answer as SSE in the same response (REST clients); or, with
    ``Accept: application/json``, the finished answer as one JSON document."""
    accept = request.headers.get("Accept", "")
    as_json = "application/json" in accept and "text/event-stream" not in accept
    run = await _start_stream(request, caller, keep_typed=as_json)
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
@_starts(otherwise=session_list_view)
async def sessions(request: HttpRequest, caller: Caller) -> HttpResponse:
    """GET: the caller's sessions (DRF). POST: start a stream whose events are read from
    ``events_url`` (the web page's EventSource), answered 201 at once."""
    run = await _start_stream(request, caller, keep_typed=False, resume_grace=settings.EVI360_RESUME_GRACE)
    run.expect_reader(settings.EVI360_FIRST_READER_TIMEOUT)
    session_id = run.session_id
    return JsonResponse(
        {"session_id": session_id, "events_url": reverse("session_events", args=[session_id])}, status=201
    )


async def _own_session(caller: Caller, pk: uuid.UUID) -> StreamSession:
    """The caller's session ``pk``; anyone else's is not found (404)."""
    owned = await run_db(lambda: StreamSession.objects.of_user(caller.user).filter(pk=pk).first())
    if owned is None:
        raise ApiError(404, "not_found", "Not found.")
    return owned


@authorize("GET")
async def session_events(request: HttpRequest, caller: Caller, pk: uuid.UUID) -> HttpResponse:
    """The events of one of the caller's sessions, as SSE (for EventSource): running, or finished
    less than ``EVI360_EVENT_RETENTION`` ago. With ``Last-Event-ID`` (EventSource sends it when it
    reconnects) or ``?last_event_id=``, it resumes after that event; otherwise it starts from the
    first."""
    owned = await _own_session(caller, pk)
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


@csrf_exempt  # CSRF applies to session callers only; authorize checks it
@authorize("DELETE", csrf=True, otherwise=session_detail_view)
async def session_detail(request: HttpRequest, caller: Caller, pk: uuid.UUID) -> HttpResponse:
    """GET: one of the caller's sessions (DRF). DELETE: stop it now, if it is still running.

    Closing an EventSource is not a reliable stop signal: a browser may keep reading ("draining")
    a short remaining response to reuse the connection, so the page's stop button says DELETE."""
    owned = await _own_session(caller, pk)
    if not await lookup.stop(str(pk)):
        return error_response(409, "not_running", f"This stream is not running (status: {owned.status}).")
    return JsonResponse({"session_id": str(pk), "status": "cancelling"}, status=202)
