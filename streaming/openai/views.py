"""An OpenAI-compatible Chat Completions API (``/v1/models``, ``/v1/chat/completions``), so
OpenWebUI and OpenAI SDK clients can use the specialist.

It starts streams exactly like ``/api/v1/stream/query`` (``starting.begin_stream``: rate limit,
per-user cap, the session row, the generation task, the timeout) and translates the session's
typed events into OpenAI's shapes: ``chat.completion.chunk`` objects over SSE, or one
``chat.completion``. The answer keeps its ``[n]`` markers and ends with a short sources list in
Markdown, so plain OpenAI clients show the citations; the final chunk also carries them as data.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from evi360.errors import openai_error
from streaming.access.auth import identify
from streaming.api.responses import EventStreamResponse
from streaming.engine.start import StreamRefused, begin_stream
from streaming.models import ClientKind
from streaming.openai.request import BadBody, parse_body
from streaming.openai.stream import completion, completion_chunks, model_ids


async def _caller(request: HttpRequest):  # type: ignore[no-untyped-def]
    caller = await identify(request)
    if caller.user is None or caller.via_session:
        return None, openai_error(
            401,
            caller.problem or "Send 'Authorization: Bearer <API key>'.",
            "invalid_request_error",
            "invalid_api_key",
        )
    return caller.user, None


@csrf_exempt  # bearer-token API: a wrong method is a 405 whatever the cookies
async def models(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return openai_error(
            405, "Use GET.", "invalid_request_error", "method_not_allowed", headers={"Allow": "GET"}
        )
    _user, refusal = await _caller(request)
    if refusal:
        return refusal
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {"id": model_id, "object": "model", "created": 0, "owned_by": "evi360"}
                for model_id in model_ids()
            ],
        }
    )


@csrf_exempt  # bearer-token API: no cookies, no CSRF
async def chat_completions(request: HttpRequest) -> HttpResponse:
    received_at = time.monotonic()
    if request.method != "POST":
        return openai_error(
            405, "Use POST.", "invalid_request_error", "method_not_allowed", headers={"Allow": "POST"}
        )
    user, refusal = await _caller(request)
    if refusal:
        return refusal
    try:
        model, question, history, stream, include_usage = parse_body(request.body)
    except BadBody as bad:
        return openai_error(bad.status, bad.message, "invalid_request_error", bad.code)
    try:
        run = await begin_stream(
            request,
            user,
            query=question,
            requested_language=None,
            conversation_id=None,
            client_kind=ClientKind.OPENAI,
            received_at=received_at,
            history=history,
        )
    except StreamRefused as refused:
        kind = "rate_limit_error" if refused.status == 429 else "server_error"
        return openai_error(refused.status, refused.message, kind, refused.code, headers=refused.headers)
    if not stream:
        return await completion(run, model)
    return EventStreamResponse(completion_chunks(run, model, include_usage), "text/event-stream")
