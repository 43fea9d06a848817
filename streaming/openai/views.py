"""An OpenAI-compatible Chat Completions API (``/v1/models``, ``/v1/chat/completions``), so
OpenWebUI and OpenAI SDK clients can use the specialist.

It starts streams exactly like ``/api/v1/stream/query`` (``engine.start.begin_stream``: rate limit,
per-user cap, the session row, the generation task, the timeout) and translates the session's
typed events into OpenAI's shapes: ``chat.completion.chunk`` objects over SSE, or one
``chat.completion``. The answer keeps its ``[n]`` markers and ends with a short sources list in
Markdown, so plain OpenAI clients show the citations; the final chunk also carries them as data.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from streaming.access.auth import Caller
from streaming.api.decorators import OPENAI, authorize
from streaming.api.responses import EventStreamResponse
from streaming.engine.start import begin_stream
from streaming.models import ClientKind
from streaming.openai.request import parse_body
from streaming.openai.stream import completion, completion_chunks, model_ids
from streaming.web.links import source_page


@csrf_exempt  # bearer-token API: a wrong method is a 405 whatever the cookies
@authorize("GET", family=OPENAI)
async def models(request: HttpRequest, caller: Caller) -> HttpResponse:
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
@authorize("POST", family=OPENAI)
async def chat_completions(request: HttpRequest, caller: Caller) -> HttpResponse:
    model, question, history, stream, include_usage = parse_body(request.body)
    run = await begin_stream(
        request,
        caller.user,  # type: ignore[arg-type]
        query=question,
        requested_language=None,
        conversation_id=None,
        client_kind=ClientKind.OPENAI,
        received_at=request.received_at,  # type: ignore[attr-defined]
        history=history,
    )
    page = source_page(request)
    if not stream:
        return await completion(run, model, page)
    return EventStreamResponse(completion_chunks(run, model, include_usage, page), "text/event-stream")
