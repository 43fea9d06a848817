"""The generation task: the agent's answer → SSE events in the session's log → the stream log row.

A plain loop. It runs as its own asyncio task (see ``start``), so the HTTP response only reads the
event log. Whatever happens — completed, model error, timeout, cancelled because the client went
away — exactly one terminal event is logged and the outcome is written in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from streaming.engine import agent, metrics
from streaming.engine.events import (
    CANCELLED,
    INTERNAL,
    INTERRUPTED,
    STOP_REQUESTED,
    STOPPED_BY_USER,
    TIMEOUT,
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    SessionEvent,
    TokenEvent,
)
from streaming.engine.markers import MARKER, MarkerGate, markers_in
from streaming.engine.request import StreamRequest
from streaming.engine.runtime import RUNTIME
from streaming.engine.wire import encode
from streaming.eventlog import RUNS, EventLog, StreamRun, retire, shared
from streaming.models import Status, StreamSession
from streaming.store import writes
from streaming.text import plain_text, shorten

logger = logging.getLogger(__name__)

SNIPPET_CHARS = 240
# Every start keeps the typed events unless its caller reads only SSE bytes (the SSE API).
KEEP_TYPED = True


def snippet(text: str) -> str:
    """A source passage as plain text, shortened, for a citation (the event, the sessions API):
    without its Markdown syntax, which a panel of sources would show raw."""
    return shorten(plain_text(text), SNIPPET_CHARS)


@dataclass(frozen=True, slots=True)
class Ending:
    """How a generation ended: the outcome's status and error, and its terminal error event
    (None: completed, its ``done`` event is built from the generation)."""

    status: Status
    error_code: str = ""
    error_message: str = ""
    event: ErrorEvent | None = None


COMPLETED = Ending(Status.COMPLETED)


def ending_of(exc: BaseException, *, interrupted: bool = False) -> Ending:
    """The ending of a generation stopped by ``exc``; ``interrupted``: cancelled by the drain."""
    if isinstance(exc, agent.UpstreamError):
        return Ending(Status.ERROR, exc.code, exc.message, ErrorEvent(exc.code, exc.message, exc.retryable))
    if isinstance(exc, TimeoutError):
        error = TIMEOUT
    elif isinstance(exc, asyncio.CancelledError):
        # Other readers (another tab, a replay) must be told to stop, or EventSource reconnects.
        error = INTERRUPTED if interrupted else CANCELLED
        if error is CANCELLED and exc.args == (STOP_REQUESTED,):
            return Ending(error.status, error.code, STOPPED_BY_USER, error.event())  # type: ignore[arg-type]
    else:
        error = INTERNAL
    return Ending(error.status, error.code, error.recorded or error.message, error.event())  # type: ignore[arg-type]


class Generation:
    """One stream's answer as it is generated: its events in order, the citations (a marker's
    first appearance), the time to first token, and at the end its outcome."""

    __slots__ = (
        "_append",
        "cited",
        "first_token",
        "length",
        "parts",
        "request",
        "run",
        "seq",
        "session_id",
        "shown",
        "sources",
        "started",
        "token_events",
        "usage",
    )

    def __init__(self, run: StreamRun, request: StreamRequest) -> None:
        self.run = run
        self.request = request
        self.session_id = str(request.session.id)
        self._append = run.log.append  # looked up once, not per token
        self.seq = 0
        self.started = request.received_at or time.monotonic()
        self.sources: dict[int, agent.NumberedSource] = {}
        # The markers are renumbered by first appearance: the reader sees [1] first, then [2],
        # whatever the model's source numbers; clients that number sources by arrival
        # (OpenWebUI) then agree with the text. shown: the model's number -> the marker shown.
        self.shown: dict[int, int] = {}
        self.cited: dict[int, tuple[int, int]] = {}  # marker shown -> (model's number, first offset)
        self.parts: list[str] = []
        self.length = 0
        self.token_events = 0
        self.first_token: tuple[float, object] | None = None
        self.usage = agent.Usage(0, 0)

    def emit(self, event: Event) -> None:
        self._append(encode(self.seq, event), event)
        self.seq += 1

    def text(self, text: str) -> None:
        """A piece of the answer. Once per token, so ``emit`` is inlined here."""
        if "[" in text:
            text = self._cite(text)
        event = TokenEvent(text)
        self._append(encode(self.seq, event), event)
        self.seq += 1
        if self.first_token is None:
            self.first_token = (time.monotonic(), timezone.now())
        self.parts.append(text)
        self.length += len(text)
        self.token_events += 1

    def _cite(self, text: str) -> str:
        """``text`` with its markers renumbered; a citation event for each new one."""
        sources, shown = self.sources, self.shown

        def renumber(match: re.Match[str]) -> str:
            number = int(match[1])
            if number not in sources:
                return match[0]  # no such source: left as the model wrote it
            if number not in shown:
                shown[number] = len(shown) + 1
            return f"[{shown[number]}]"

        text = MARKER.sub(renumber, text)
        by_marker = {marker: number for number, marker in shown.items()}
        for marker, offset in markers_in(text):
            number = by_marker.get(marker)
            if number is not None and marker not in self.cited:
                self.cited[marker] = (number, self.length + offset)
                chunk = sources[number].chunk
                self.emit(
                    CitationEvent(
                        marker,
                        chunk.source_id,
                        chunk.title,
                        chunk.url,
                        snippet(chunk.text),
                        chunk.chunk_id,
                        chunk.page,
                    )
                )
        return text

    async def answer(self) -> None:
        """The session event, then the agent's answer as token and citation events."""
        request = self.request
        session = request.session
        conversation_id = str(session.conversation_id) if session.conversation_id else None
        self.emit(SessionEvent(self.session_id, conversation_id, session.language, session.model_name))
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
                            self.text(text)
                    elif isinstance(event, agent.Sources):
                        self.sources = {s.number: s for s in event.items}
                    else:
                        self.usage = event
            if tail := gate.flush():
                self.text(tail)

    def conclude(self, ending: Ending, retention: float) -> tuple[writes.Outcome, Event | None, bytes | None]:
        """The outcome to record, and the terminal event (``done`` when completed) and its bytes."""
        duration_ms = round((time.monotonic() - self.started) * 1000)
        first_token, usage = self.first_token, self.usage
        ttft_ms = round((first_token[0] - self.started) * 1000) if first_token else None
        terminal: Event | None = ending.event
        if ending.status is Status.COMPLETED:
            terminal = DoneEvent(
                self.session_id,
                ttft_ms,
                duration_ms,
                usage.input_tokens,
                usage.output_tokens,
                sorted(self.cited),
            )
        # Encoded now, so that the replay kept with the outcome ends with it too.
        last = encode(self.seq, terminal) if terminal is not None else None
        finished_at = timezone.now()
        outcome = writes.Outcome(
            status=ending.status,
            finished_at=finished_at,
            duration_ms=duration_ms,
            answer="".join(self.parts),
            error_code=ending.error_code,
            error_message=ending.error_message,
            first_token_at=first_token[1] if first_token else None,  # type: ignore[arg-type]
            ttft_ms=ttft_ms,
            token_events=self.token_events,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            citations=[(m, self.sources[n].chunk, offset) for m, (n, offset) in self.cited.items()],
            replay=(*self.run.log.events, *([last] if last else ())) if retention > 0 else (),
            replay_until=finished_at + timedelta(seconds=retention) if retention > 0 else None,
        )
        return outcome, terminal, last


async def generate(run: StreamRun, request: StreamRequest) -> None:
    """Generate the answer into the run's log. Whatever happens (completed, model error, timeout,
    cancelled), one terminal event is logged and the outcome recorded."""
    generation = Generation(run, request)
    ending = COMPLETED
    metrics.record_start()
    try:
        await generation.answer()
    except asyncio.CancelledError as exc:
        ending = ending_of(exc, interrupted=generation.session_id in RUNTIME.interrupted)
        raise
    except Exception as exc:
        if not isinstance(exc, TimeoutError | agent.UpstreamError):
            logger.exception("stream %s failed", generation.session_id)
        ending = ending_of(exc)
    finally:
        await finish(generation, ending)


async def finish(generation: Generation, ending: Ending) -> None:
    """Record, report and retire a generation that ended."""
    run, session = generation.run, generation.request.session
    retention = settings.EVI360_EVENT_RETENTION
    outcome, terminal, last = generation.conclude(ending, retention)
    stored = False
    try:
        # Written before the terminal event, so a client that has seen `done` finds the row
        # final. Shielded: a cancelled stream is recorded even if cancelled again meanwhile.
        stored = await asyncio.shield(RUNTIME.record(session.id, outcome))
        if not stored:
            # The database is away: the client gets its terminal event now, the outcome is
            # written as soon as the database is back.
            RUNTIME.keep_trying(session.id, outcome)
    finally:
        report(session, outcome)
        if last is not None and terminal is not None:
            run.log.append(last, terminal)
        run.log.close()
        # Once its replay is in the database, this process need not keep the run.
        retire(run, retention, replay_stored=stored and bool(outcome.replay))


def report(session: StreamSession, outcome: writes.Outcome) -> None:
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


def start(request: StreamRequest, *, resume_grace: float = 0.0, keep_typed: bool = KEEP_TYPED) -> StreamRun:
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
