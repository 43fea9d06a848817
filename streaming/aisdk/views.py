"""The AI SDK's chat endpoints, for React apps that use ``useChat`` with ``DefaultChatTransport``:
``POST /api/v1/chat`` (ask: the answer as a UI message stream), ``GET /api/v1/chat/<id>/stream``
(``useChat({resume: true})``: the running answer from its start, from any worker) and
``POST /api/v1/chat/<id>/stop`` (stop it: in a resumable setup ``useChat``'s ``stop()`` only
disconnects).

A chat is a conversation, found by the client's chat id (``Conversation.chat_id``). Streams
start exactly like ``/api/v1/stream/query`` (``engine.start.begin_stream``: rate limit, per-user
cap, the session row, the generation task, the timeout) and are logged as ``ai_sdk`` streams.
Refusals before the stream are our JSON errors; a failure during it is an ``error`` chunk.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from evi360.db import run_db
from evi360.errors import ApiError
from streaming.access.auth import Caller
from streaming.aisdk.request import parse_body, valid_chat_id
from streaming.aisdk.stream import HEADERS, ui_message_stream
from streaming.api.decorators import authorize
from streaming.api.responses import EventStreamResponse
from streaming.engine.start import begin_stream
from streaming.engine.wire import decoded
from streaming.eventlog import StreamRun, lookup
from streaming.models import ClientKind, Conversation, StreamSession, stale_cutoff
from streaming.store.writes import Chat

# Our source pages, linked as the OpenAI API links them (absolute: the React app is elsewhere).
from streaming.web.links import SourcePage, source_page


def _stream_response(body: AsyncIterator[bytes]) -> EventStreamResponse:
    response = EventStreamResponse(body)
    for name, value in HEADERS.items():
        response[name] = value
    return response


@csrf_exempt  # CSRF applies to session callers only; authorize checks it, as DRF does.
@authorize("POST", csrf=True, json_body=True, user_later=True)
async def chat(request: HttpRequest, caller: Caller) -> HttpResponse:
    """Ask (or, ``trigger: "regenerate-message"``, ask again) in a chat; the answer streams."""
    body = parse_body(request.body)
    run = await begin_stream(
        request,
        caller.user or caller.claim,  # type: ignore[arg-type]
        query=body.question,
        requested_language=None,
        conversation_id=None,
        client_kind=ClientKind.AI_SDK,
        received_at=request.received_at,  # type: ignore[attr-defined]
        chat=Chat(body.chat_id, body.regenerate, body.message_id),
        # A reload resumes (GET …/stream) within the grace; useChat's stop() only disconnects.
        resume_grace=settings.EVI360_RESUME_GRACE,
    )
    return _stream_response(_read(run, source_page(request)))


async def _read(run: StreamRun, page: SourcePage) -> AsyncIterator[bytes]:
    """The run's answer; a reader meanwhile (the outermost generator counts it, so a client that
    goes away uncounts it at once)."""
    run.add_reader()
    try:
        batches = run.log.follow_batches(keep_alive=settings.EVI360_SSE_KEEPALIVE)
        async for chunk in ui_message_stream(batches, page):
            yield chunk
    finally:
        run.remove_reader()


async def _own_chat(caller: Caller, chat_id: str) -> Conversation | None:
    """The caller's chat ``chat_id``: None when there is no such chat; anyone else's is a 404."""
    if not valid_chat_id(chat_id):
        raise ApiError(404, "not_found", "Not found.")

    def find() -> Conversation | None:
        found = Conversation.objects.filter(chat_id=chat_id).first()
        if found is None:
            with contextlib.suppress(ValueError):  # a chat id that is a conversation id
                found = Conversation.objects.filter(pk=uuid.UUID(chat_id)).first()
        return found

    conversation = await run_db(find)
    if conversation is not None and conversation.user_id != caller.user.pk:  # type: ignore[union-attr]
        raise ApiError(404, "not_found", "Not found.")
    return conversation


async def _running(conversation: Conversation | None) -> list[str]:
    """The chat's answers still streaming, newest first (one, but for a burst of questions)."""
    if conversation is None:
        return []
    return await run_db(
        lambda: [
            str(pk)
            for pk in StreamSession.objects.active()
            .filter(conversation_id=conversation.pk, created_at__gte=stale_cutoff())
            .order_by("-created_at")
            .values_list("pk", flat=True)
        ]
    )


def _no_content() -> HttpResponse:
    response = HttpResponse(status=204)
    del response["Content-Type"]
    return response


@authorize("GET")
async def chat_stream(request: HttpRequest, caller: Caller, chat_id: str) -> HttpResponse:
    """The chat's running answer from its first chunk (the AI SDK replays it: its default
    ``resumeStreamIsReplay``), read from the event log of whichever worker generates it; 204 when
    none runs (also for a chat id not used yet: ``useChat({resume: true})`` asks on mount)."""
    for session_id in (await _running(await _own_chat(caller, chat_id)))[:1]:
        found = await lookup.events_of(session_id, 0)
        if isinstance(found, lookup.Body):
            return _stream_response(_resumed(found.chunks, source_page(request)))
    return _no_content()


async def _resumed(chunks: AsyncGenerator[bytes], page: SourcePage) -> AsyncIterator[bytes]:
    """Our SSE bytes (the log's, any worker's) as the UI message stream. ``chunks`` is closed as
    soon as this is, so its reader count drops when the client goes away."""
    async with contextlib.aclosing(chunks):
        async for chunk in ui_message_stream(decoded(chunks), page):
            yield chunk


@csrf_exempt  # CSRF applies to session callers only; authorize checks it
@authorize("POST", csrf=True)
async def chat_stop(request: HttpRequest, caller: Caller, chat_id: str) -> HttpResponse:
    """Stop the chat's running answer (recorded ``cancelled``): 202 ``cancelling``, or 200
    ``not_running`` when none runs. Not one of the caller's chats: 404."""
    conversation = await _own_chat(caller, chat_id)
    if conversation is None:
        raise ApiError(404, "not_found", "Not found.")
    stopped = [session_id for session_id in await _running(conversation) if await lookup.stop(session_id)]
    if stopped:
        return JsonResponse(
            {"chat_id": chat_id, "session_id": stopped[0], "status": "cancelling"}, status=202
        )
    return JsonResponse({"chat_id": chat_id, "session_id": None, "status": "not_running"})
