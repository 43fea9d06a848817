"""Starting a stream, for every endpoint that starts one (SSE API, web page, OpenAI-compatible):
the rate limit, the per-user cap, the session row, then the generation task. Refusals are raised
as ``StreamRefused``, which each endpoint renders in its own error shape."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from citations.language import resolve_language
from citations.query_vectors import VECTORS
from evi360.errors import ApiError
from streaming.access import auth
from streaming.engine import agent
from streaming.engine import generate as generation
from streaming.engine.opening import NotAuthenticated, PendingStart
from streaming.engine.runtime import RUNTIME
from streaming.eventlog import StreamRun
from streaming.store import writes


class StreamRefused(ApiError):
    """A start refused (shutting down, rate limit, cap, conversation, a JWT's user)."""


async def begin_stream(
    request: HttpRequest,
    user: AbstractBaseUser | auth.Claim,
    *,
    query: str,
    requested_language: str | None,
    conversation_id: uuid.UUID | None,
    client_kind: str,
    received_at: float,
    history: Sequence[tuple[str, str]] | None = None,
    chat: writes.Chat | None = None,
    regenerates: uuid.UUID | None = None,
    resume_grace: float = 0.0,
    keep_typed: bool = generation.KEEP_TYPED,
) -> StreamRun:
    """Start a stream. ``history`` given (the OpenAI API sends its own) means no conversation is
    kept; otherwise the stream continues ``conversation_id`` (or starts a new conversation) and the
    history is that conversation's completed turns. ``chat`` (the AI SDK's): the conversation is
    the chat's, started when its id is new. ``regenerates``: the stream answers that session of
    ``conversation_id`` again (it and later turns leave the history). ``keep_typed=False``: the response reads
    only SSE bytes (less memory per stream). ``user`` may be a checked JWT's ``Claim``: its user
    is read in the start's trip to a database thread, and refused (401) there if unusable."""
    if RUNTIME.draining:
        # Nothing was done: the client (or nginx's proxy_next_upstream) may try another worker.
        raise StreamRefused(
            503, "shutting_down", "This server is restarting; try again.", {"Retry-After": "1"}
        )
    claim = user if isinstance(user, auth.Claim) else None
    if claim is None:
        request.user = user
    language = resolve_language(query, requested_language)
    # The question's embedding: a provider's request goes out now, while the start's database
    # trip does the rest; the built-in model embeds in that trip (citations/query_vectors.py).
    vector = VECTORS.request(query)
    start = PendingStart(
        request,
        writes.SessionRequest(
            user_id=claim.user_id if claim else user.pk,  # type: ignore[union-attr]
            query=query,
            language=language,
            model_name=agent.model_display_name(),
            client_kind=client_kind,
            conversation_id=conversation_id,
            start_conversation=history is None,
            chat=chat,
            regenerates=regenerates,
        ),
        history,
        received_at,
        claim,
        vector,
        asyncio.get_running_loop(),
    )
    try:
        opened = await RUNTIME.starts.submit(start)
    except NotAuthenticated as refused:
        raise StreamRefused(
            401, "not_authenticated", str(refused), {"WWW-Authenticate": 'Bearer realm="api"'}
        ) from None
    except writes.ConversationNotFound:
        raise StreamRefused(404, "conversation_not_found", "There is no such conversation.") from None
    except writes.TooManyStreams:
        raise StreamRefused(
            503,
            "too_many_streams",
            f"You already have {settings.EVI360_MAX_CONCURRENT_STREAMS} answers streaming; "
            "wait for one to finish.",
            {"Retry-After": "5"},
        ) from None
    if isinstance(opened, dict):  # the rate limit's usage: over the limit
        retry_after = max(1, opened["time_left"])
        raise StreamRefused(
            429,
            "rate_limited",
            f"Too many questions; try again in {retry_after} s.",
            {"Retry-After": str(retry_after)},
        )
    return generation.start(opened, resume_grace=resume_grace, keep_typed=keep_typed)
