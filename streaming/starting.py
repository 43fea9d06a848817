"""Starting a stream, for every endpoint that starts one (SSE API, web page, OpenAI-compatible):
the rate limit, the per-user cap, the session row, then the generation task. Refusals are raised
as ``StreamRefused``, which each endpoint renders in its own error shape."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from citations.language import resolve_language
from evi360.db import run_db

from . import agent, generation, selectors, services, shutdown
from .eventlog import StreamRun


class StreamRefused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _rate_limit(request: HttpRequest) -> dict[str, Any] | None:
    # django-ratelimit's decorator is sync-only; its core is called here, counting per user in
    # the shared cache (Redis when REDIS_URL is set).
    return get_usage(
        request, group="stream-query", key="user", rate=settings.EVI360_RATE_LIMIT, increment=True
    )


async def begin_stream(
    request: HttpRequest,
    user: AbstractBaseUser,
    *,
    query: str,
    requested_language: str | None,
    conversation_id: uuid.UUID | None,
    client_kind: str,
    received_at: float,
    history: Sequence[tuple[str, str]] | None = None,
    resume_grace: float = 0.0,
) -> StreamRun:
    """Start a stream. ``history`` given (the OpenAI API sends its own) means no conversation is
    kept; otherwise the stream continues ``conversation_id`` (or starts a new conversation) and the
    history is that conversation's completed turns."""
    if shutdown.draining():
        # Nothing was done: the client (or nginx's proxy_next_upstream) may try another worker.
        raise StreamRefused(
            503, "shutting_down", "This server is restarting; try again.", {"Retry-After": "1"}
        )
    request.user = user
    usage = await run_db(_rate_limit, request)
    if usage and usage["should_limit"]:
        retry_after = max(1, usage["time_left"])
        raise StreamRefused(
            429,
            "rate_limited",
            f"Too many questions; try again in {retry_after} s.",
            {"Retry-After": str(retry_after)},
        )
    language = resolve_language(query, requested_language)
    try:
        session = await run_db(
            services.open_session,
            user_id=user.pk,
            query=query,
            language=language,
            model_name=agent.model_display_name(),
            client_kind=client_kind,
            conversation_id=conversation_id,
            max_concurrent=settings.EVI360_MAX_CONCURRENT_STREAMS,
            stale_after=timedelta(
                seconds=settings.EVI360_STREAM_TIMEOUT + settings.EVI360_INTERRUPTED_MARGIN
            ),
            start_conversation=history is None,
        )
    except services.ConversationNotFound:
        raise StreamRefused(404, "conversation_not_found", "There is no such conversation.") from None
    except services.TooManyStreams:
        raise StreamRefused(
            503,
            "too_many_streams",
            f"You already have {settings.EVI360_MAX_CONCURRENT_STREAMS} answers streaming; "
            "wait for one to finish.",
            {"Retry-After": "5"},
        ) from None
    if history is None:
        history = await run_db(
            selectors.conversation_history, session.conversation_id, settings.EVI360_HISTORY_TURNS
        )
    # A follow-up ("en voor zwangere werknemers?") is searched together with the question before it.
    retrieval_query = f"{history[-1][0]} {query}" if history else None
    return generation.start(
        generation.StreamRequest(
            session=session, history=history, retrieval_query=retrieval_query, received_at=received_at
        ),
        resume_grace=resume_grace,
    )
