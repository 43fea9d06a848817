"""What a generation needs, as the start hands it over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_ai.models import Model

from streaming.engine.agent import NumberedSource
from streaming.models import StreamSession


@dataclass(frozen=True)
class StreamRequest:
    session: StreamSession
    history: Sequence[tuple[str, str]] = ()
    # What retrieval searches for, when not just the question (a follow-up: with the previous one).
    retrieval_query: str | None = None
    model: Model | None = None
    # Retrieved with the session row (one database trip); None: the agent retrieves them.
    sources: list[NumberedSource] | None = None
    # time.monotonic() when the request arrived: time to first token counts from there.
    received_at: float = 0.0
