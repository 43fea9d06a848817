"""The generation task: the agent's answer → SSE events in the session's log → the stream log row.

A plain loop. It runs as its own asyncio task (see ``start``), so the HTTP response only reads the
event log. Whatever happens — completed, model error, timeout, cancelled because the client went
away — exactly one terminal event is logged and the outcome is written in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from pydantic_ai.models import Model

from evi360.db import Batch, run_db
from streaming.engine import agent, metrics, shutdown
from streaming.engine.events import (
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    SessionEvent,
    TokenEvent,
    encode,
)
from streaming.engine.markers import MarkerGate, markers_in
from streaming.eventlog import RUNS, EventLog, StreamRun, retire, shared
from streaming.models import Status, StreamSession
from streaming.store import writes as services
from streaming.text import shorten

logger = logging.getLogger(__name__)

SNIPPET_CHARS = 240
MESSAGES = {
    "timeout": "The answer took too long and was stopped. Please try again.",
    "internal": "Something went wrong on our side while answering. Please try again.",
    "cancelled": "The answer was stopped before it was finished.",
}


@dataclass(frozen=True)
class StreamRequest:
    session: StreamSession
    history: Sequence[tuple[str, str]] = ()
    # What retrieval searches for, when not just the question (a follow-up: with the previous one).
    retrieval_query: str | None = None
    model: Model | None = None
    # Retrieved with the session row (one database trip); None: the agent retrieves them.
    sources: list[agent.NumberedSource] | None = None
    # time.monotonic() when the request arrived: time to first token counts from there.
    received_at: float = 0.0


def snippet(text: str) -> str:
    """A source passage shortened for a citation (the event, the sessions API)."""
    return shorten(text, SNIPPET_CHARS)


async def generate(run: StreamRun, request: StreamRequest) -> None:
    session = request.session
    session_id = str(session.id)
    seq = 0

    def emit(event: Event) -> None:
        nonlocal seq
        run.log.append(encode(seq, event), event)
        seq += 1

    started = request.received_at or time.monotonic()
    sources: dict[int, agent.NumberedSource] = {}
    cited: dict[int, int] = {}  # marker -> offset of first appearance
    parts: list[str] = []
    length = 0
    token_events = 0
    first_token: tuple[float, object] | None = None
    usage = agent.Usage(0, 0)
    status, error_code, error_message = Status.COMPLETED, "", ""
    terminal: Event | None = None

    def emit_text(text: str) -> None:
        nonlocal length, token_events, first_token
        if "[" in text:
            for marker, offset in markers_in(text):
                if marker in sources and marker not in cited:
                    cited[marker] = length + offset
                    chunk = sources[marker].chunk
                    emit(CitationEvent(marker, chunk.source_id, chunk.title, chunk.url, snippet(chunk.text)))
        emit(TokenEvent(text))
        if first_token is None:
            first_token = (time.monotonic(), timezone.now())
        parts.append(text)
        length += len(text)
        token_events += 1

    metrics.record_start()
    try:
        conversation_id = str(session.conversation_id) if session.conversation_id else None
        emit(SessionEvent(session_id, conversation_id, session.language, session.model_name))
        gate = MarkerGate()
        async with asyncio.timeout(settings.EVI360_STREAM_TIMEOUT):
            # aclosing: if this loop stops early, the agent's run is closed in this task, where
            # its context was entered (Pydantic AI's context variables and cancel scopes need that).
            answer = agent.answer(
                session.query,
                session.language,
                history=request.history,
                retrieval_query=request.retrieval_query,
                model=request.model,
                sources=request.sources,
            )
            async with contextlib.aclosing(answer) as events:
                async for event in events:
                    if isinstance(event, agent.TextDelta):
                        text = gate.feed(event.text)
                        if text:
                            emit_text(text)
                    elif isinstance(event, agent.Sources):
                        sources = {s.number: s for s in event.items}
                    else:
                        usage = event
            if tail := gate.flush():
                emit_text(tail)
    except TimeoutError:
        status, error_code, error_message = Status.TIMEOUT, "timeout", MESSAGES["timeout"]
        terminal = ErrorEvent("timeout", error_message, True)
    except agent.UpstreamError as exc:
        status, error_code, error_message = Status.ERROR, exc.code, exc.message
        terminal = ErrorEvent(exc.code, exc.message, exc.retryable)
    except asyncio.CancelledError:
        if shutdown.interrupted(session_id):
            status, error_code, error_message = (
                Status.INTERRUPTED,
                "interrupted",
                shutdown.INTERRUPTED_MESSAGE,
            )
            terminal = ErrorEvent("interrupted", error_message, True)
        else:
            status, error_code, error_message = Status.CANCELLED, "cancelled", "The client went away."
            # Other readers (another tab, a replay) must be told to stop, or EventSource reconnects.
            terminal = ErrorEvent("cancelled", MESSAGES["cancelled"], True)
        raise
    except Exception:
        logger.exception("stream %s failed", session_id)
        status, error_code, error_message = Status.ERROR, "internal", MESSAGES["internal"]
        terminal = ErrorEvent("internal", error_message, True)
    finally:
        duration_ms = round((time.monotonic() - started) * 1000)
        ttft_ms = round((first_token[0] - started) * 1000) if first_token else None
        if status is Status.COMPLETED:
            terminal = DoneEvent(
                session_id, ttft_ms, duration_ms, usage.input_tokens, usage.output_tokens, sorted(cited)
            )
        # Encoded now, so that the replay kept with the outcome ends with it too.
        last = encode(seq, terminal) if terminal is not None else None
        finished_at = timezone.now()
        retention = settings.EVI360_EVENT_RETENTION
        outcome = services.Outcome(
            status=status,
            finished_at=finished_at,
            duration_ms=duration_ms,
            answer="".join(parts),
            error_code=error_code,
            error_message=error_message,
            first_token_at=first_token[1] if first_token else None,  # type: ignore[arg-type]
            ttft_ms=ttft_ms,
            token_events=token_events,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            citations=[(m, sources[m].chunk, offset) for m, offset in cited.items()],
            replay=(*run.log.events, *([last] if last else ())) if retention > 0 else (),
            replay_until=finished_at + timedelta(seconds=retention) if retention > 0 else None,
        )
        stored = False
        try:
            # Written before the terminal event, so a client that has seen `done` finds the row
            # final. Shielded: a cancelled stream is recorded even if cancelled again meanwhile.
            stored = await asyncio.shield(_record(session.id, outcome))
            if not stored:
                # The database is away: the client gets its terminal event now, the outcome is
                # written as soon as the database is back.
                _keep_trying(session.id, outcome)
        finally:
            report(session, outcome)
            if last is not None and terminal is not None:
                run.log.append(last, terminal)
            run.log.close()
            # Once its replay is in the database, this process need not keep the run.
            retire(run, retention, replay_stored=stored and bool(outcome.replay))


# Seconds between attempts to write an outcome the database refused (about 20 minutes in all).
RETRY_DELAYS = (0.5, 1, 2, 5, 10, 30, 60, *(120,) * 9)
_retrying: set[asyncio.Task[None]] = set()


def _write_outcomes(outcomes: Sequence[tuple[uuid.UUID, services.Outcome]]) -> list[None]:
    return services.record_outcomes(outcomes)  # looked up per call: tests replace it


# Streams that end together write their outcomes in one transaction.
_OUTCOMES: Batch[tuple[uuid.UUID, services.Outcome], None] = Batch(_write_outcomes)


async def _record(session_id: uuid.UUID, outcome: services.Outcome) -> bool:
    try:
        await _OUTCOMES.submit((session_id, outcome))
    except DatabaseError as exc:
        logger.warning("stream %s: could not record its outcome yet (%s); retrying", session_id, exc)
        return False
    return True


def _keep_trying(session_id: object, outcome: services.Outcome) -> None:
    async def retry() -> None:
        for delay in RETRY_DELAYS:
            await asyncio.sleep(delay)
            try:
                await run_db(services.record_outcome, session_id, outcome)
            except DatabaseError:
                continue
            logger.warning("stream %s: outcome recorded after the database came back", session_id)
            return
        logger.error("stream %s: outcome %s lost: the database stayed away", session_id, outcome.status)

    _track(retry(), session_id)


def _track(writing: Coroutine[None, None, None], session_id: object) -> None:
    """Run an outcome write in a task of its own, kept until it ends (tests wait for them)."""
    task = asyncio.get_running_loop().create_task(writing, name=f"record-{session_id}")
    _retrying.add(task)
    task.add_done_callback(_retrying.discard)


def record_unstarted(request: StreamRequest) -> None:
    """A session whose row was written but whose client went away before its generation
    started: recorded ``cancelled``, like a stream cut later."""
    started = request.received_at or time.monotonic()
    outcome = services.Outcome(
        status=Status.CANCELLED,
        finished_at=timezone.now(),
        duration_ms=round((time.monotonic() - started) * 1000),
        error_code="cancelled",
        error_message="The client went away.",
    )
    session_id = request.session.id

    async def write() -> None:
        if not await _record(session_id, outcome):
            _keep_trying(session_id, outcome)

    _track(write(), session_id)


def report(session: StreamSession, outcome: services.Outcome) -> None:
    """Metrics and one log line per stream end; a WARNING when it was slow."""
    metrics.record_end(
        outcome.status, outcome.error_code, outcome.ttft_ms, outcome.duration_ms, outcome.token_events
    )
    fields = {
        "session_id": str(session.id),
        "user_id": session.user_id,
        "outcome": outcome.status.value,
        "error_code": outcome.error_code or None,
        "ttft_ms": outcome.ttft_ms,
        "duration_ms": outcome.duration_ms,
        "token_events": outcome.token_events,
        "input_tokens": outcome.input_tokens,
        "output_tokens": outcome.output_tokens,
    }
    slow = []
    if outcome.ttft_ms is not None and outcome.ttft_ms > settings.EVI360_SLOW_TTFT_MS:
        slow.append(f"time to first token {outcome.ttft_ms} ms > {settings.EVI360_SLOW_TTFT_MS:g} ms")
    if outcome.status is Status.TIMEOUT or outcome.duration_ms > settings.EVI360_STREAM_TIMEOUT * 1000:
        slow.append(f"ran {outcome.duration_ms} ms, past the {settings.EVI360_STREAM_TIMEOUT:g} s timeout")
    if slow:
        logger.warning("slow stream: %s", "; ".join(slow), extra={"stream": fields})
    else:
        logger.info("stream ended", extra={"stream": fields})


def start(request: StreamRequest, *, resume_grace: float = 0.0, keep_typed: bool = True) -> StreamRun:
    """Start generating in a task of its own and return the run the response will read.
    ``resume_grace``: how long the generation goes on without a reader. ``keep_typed``: the
    response reads typed events (``EventLog.follow``), not only SSE bytes."""
    run = StreamRun(str(request.session.id), grace=resume_grace, log=EventLog(keep_typed=keep_typed))
    RUNS[run.session_id] = run
    run.task = asyncio.get_running_loop().create_task(
        generate(run, request), name=f"stream-{request.session.id}"
    )
    if (log := shared()) is not None:
        log.attach(run)
    return run
