"""The specialist: retrieve sources, number them, and stream the model's answer.

One model per process (a fresh provider costs tens of milliseconds and a new connection pool).
Sources are retrieved *before* the model call and handed to it numbered ``[1]..[k]``, so an answer
is exactly one model request: no tools, no output validation, no second step. It is streamed with
Pydantic AI's direct API (``pydantic_ai.direct.model_request_stream``): the same models, providers,
messages and errors as an ``Agent`` run, without the agent graph around that one request and its
CPU per token and per run (docs/performance.md). When the specialist gets tools, it needs an
``Agent`` and ``agent.iter()`` again.

``answer()`` is what the streaming endpoint calls: an async generator of typed events — the
numbered sources first, then each text delta the moment the model produces it (no debounce, no
buffering), then the usage. Upstream failures surface as ``UpstreamError`` with a code the caller
maps onto its wire format.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx2
from django.conf import settings
from pydantic_ai.direct import model_request_stream
from pydantic_ai.exceptions import (
    AgentRunError,
    ModelAPIError,
    ModelConnectionError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelServerError,
    ModelUnavailableError,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    UserPromptPart,
)
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings

from citations.query_vectors import VECTORS
from citations.retrieval import RetrievedChunk, retrieve
from evi360.db import run_db
from streaming.engine.events import UPSTREAM_ERROR, UPSTREAM_UNAVAILABLE, ErrorCode
from streaming.engine.offline_model import OFFLINE_MODEL_NAME, build_offline_model

LANGUAGE_NAMES = {"nl": "Dutch (Nederlands)", "en": "English"}

INSTRUCTIONS = """\
You are EVI 360, an assistant for occupational health and safety specialists in the Netherlands.

Rules:
- Answer in the language named on the "Answer language" line, whatever language the sources are in.
- Use only the numbered sources given with the question. Do not add facts from elsewhere.
- Cite the sources inline with their number in square brackets right after the statement they
  support, one number per bracket: [1], or [1][3] for two sources. Never write [1, 3] or [1-3].
- If the sources do not cover the question, say so plainly and do not guess.
- Be concise and practical: short paragraphs or a short list.
"""


class UpstreamError(Exception):
    """The model failed. ``code`` is ``upstream_unavailable`` (overloaded, rate limited, 5xx,
    connection failure: worth retrying later) or ``upstream_error`` (anything else); ``message``
    is safe to show a user."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable

    @classmethod
    def of(cls, error: ErrorCode, message: str | None = None) -> UpstreamError:
        """The error of a code in ``events.ERROR_CODES``, with its message or one of its ``others``."""
        return cls(error.code, message or error.message, retryable=error.retryable)


@dataclass(frozen=True)
class NumberedSource:
    number: int
    chunk: RetrievedChunk


@dataclass(frozen=True)
class Sources:
    """The numbered sources given to the model (empty when the knowledge base has nothing)."""

    items: list[NumberedSource]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


AnswerEvent = Sources | TextDelta | Usage


def numbered(chunks: Sequence[RetrievedChunk]) -> list[NumberedSource]:
    """Retrieved chunks as the sources the model cites, ``[1]`` first."""
    return [NumberedSource(number, chunk) for number, chunk in enumerate(chunks, start=1)]


def build_model(name: str) -> Model:
    """The model for an ``EVI360_MODEL`` value."""
    if name == OFFLINE_MODEL_NAME:
        return build_offline_model()
    model_settings = ModelSettings(
        max_tokens=settings.EVI360_MAX_OUTPUT_TOKENS, max_retries=settings.EVI360_UPSTREAM_MAX_RETRIES
    )
    if name.startswith("python:"):
        # A factory of your own, "python:package.module:function", returning a Pydantic AI model.
        module_name, _, function = name.removeprefix("python:").partition(":")
        return getattr(importlib.import_module(module_name), function)()
    if name.startswith("anthropic:"):
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        provider = AnthropicProvider(
            api_key=settings.ANTHROPIC_API_KEY or None,
            base_url=settings.ANTHROPIC_BASE_URL or None,
            http_client=anthropic_http_client(),
        )
        return AnthropicModel(name.split(":", 1)[1], provider=provider, settings=model_settings)
    from pydantic_ai.models import infer_model

    model = infer_model(name)
    model._settings = {**(model.settings or {}), **model_settings}  # type: ignore[attr-defined]
    return model


def anthropic_http_client() -> httpx2.AsyncClient:
    """The SDK's HTTP client for ``EVI360_ANTHROPIC_HTTP``, with its timeouts and every idle
    connection kept (the SDK's own keeps 100 of 1,000). Both map transport errors onto httpx2's, so
    the SDK's errors, and ours, are the same either way."""
    from anthropic import DefaultAioHttpClient, DefaultAsyncHttpxClient

    most = settings.EVI360_UPSTREAM_MAX_CONNECTIONS
    limits = httpx2.Limits(max_connections=most, max_keepalive_connections=most, keepalive_expiry=60)
    client = DefaultAioHttpClient if settings.EVI360_ANTHROPIC_HTTP == "aiohttp" else DefaultAsyncHttpxClient
    return client(limits=limits)


@functools.cache
def get_model() -> Model:
    return build_model(settings.EVI360_MODEL)


def model_display_name(model: Model | None = None) -> str:
    """The name we record and show: ``offline``, or e.g. ``anthropic:claude-sonnet-4-6``."""
    model = model or get_model()
    return (
        model.model_name if model.model_name == OFFLINE_MODEL_NAME else f"{model.system}:{model.model_name}"
    )


def format_prompt(query: str, language: str, sources: Sequence[NumberedSource]) -> str:
    blocks = []
    for source in sources:
        chunk = source.chunk
        heading = f" — {chunk.heading_path}" if chunk.heading_path else ""
        blocks.append(f"[{source.number}] {chunk.title}{heading} ({chunk.language})\n{chunk.text}")
    sources_text = "\n\n".join(blocks) if blocks else "(no sources found)"
    return (
        f"<sources>\n{sources_text}\n</sources>\n\n"
        f"Answer language: {LANGUAGE_NAMES.get(language, language)} [{language}]\n"
        f"Question: {query}"
    )


def history_messages(history: Sequence[tuple[str, str]]) -> list[ModelMessage]:
    """Earlier (question, answer) turns of the conversation as model messages."""
    messages: list[ModelMessage] = []
    for question, answer_text in history:
        messages.append(ModelRequest(parts=[UserPromptPart(content=question)]))
        messages.append(ModelResponse(parts=[TextPart(content=answer_text)]))
    return messages


def _is_unavailable(exc: Exception) -> bool:
    if isinstance(exc, ModelRateLimitError | ModelUnavailableError | ModelServerError | ModelConnectionError):
        return True
    return isinstance(exc, ModelHTTPError) and (exc.status_code in (408, 429) or exc.status_code >= 500)


def _upstream_error(exc: Exception) -> UpstreamError:
    return UpstreamError.of(UPSTREAM_UNAVAILABLE if _is_unavailable(exc) else UPSTREAM_ERROR)


async def answer(
    query: str,
    language: str,
    *,
    history: Sequence[tuple[str, str]] = (),
    retrieval_query: str | None = None,
    model: Model | None = None,
    k: int | None = None,
    sources: list[NumberedSource] | None = None,
) -> AsyncIterator[AnswerEvent]:
    """Stream the answer to ``query`` in ``language`` (``nl``/``en``, already resolved).

    Yields ``Sources`` once, then ``TextDelta`` per model delta as it arrives, then ``Usage``.
    Raises ``UpstreamError`` for model failures. Cancelling the consumer cancels the model call.
    ``sources`` given: answer from those instead of retrieving.
    """
    if sources is None:
        # run_db gives the connection back before the model call, which can take a minute.
        k = k or settings.EVI360_RETRIEVAL_K
        text = retrieval_query or query
        vector = await VECTORS.embed(text)
        sources = numbered(await run_db(retrieve, text, language, k, vector=vector))
    yield Sources(sources)

    prompt = ModelRequest(
        parts=[UserPromptPart(format_prompt(query, language, sources))], instructions=INSTRUCTIONS
    )
    messages = [*history_messages(history), prompt]
    try:
        async with model_request_stream(model or get_model(), messages) as response:
            async for event in response:
                if isinstance(event, PartDeltaEvent):
                    if isinstance(event.delta, TextPartDelta) and event.delta.content_delta:
                        yield TextDelta(event.delta.content_delta)
                elif isinstance(event, PartStartEvent):
                    if isinstance(event.part, TextPart) and event.part.content:
                        yield TextDelta(event.part.content)
            usage = response.usage
    except (ModelAPIError, AgentRunError) as exc:
        raise _upstream_error(exc) from exc
    except httpx2.TransportError as exc:
        # The anthropic SDK passes errors of a cut-off response body through unwrapped.
        raise UpstreamError.of(UPSTREAM_UNAVAILABLE, UPSTREAM_UNAVAILABLE.others[0]) from exc
    yield Usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0)


def warm_up() -> None:
    """Answer once from an in-process model, so the first real question does not pay for what
    Pydantic AI sets up lazily on its first request (and so it is loaded before the ASGI module
    freezes the start-up heap out of the garbage collector's sight). In a thread of its own:
    servers may import the application inside their running event loop."""
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        yield "ok [1]"

    async def run() -> None:
        async for _ in answer("warm-up", "en", sources=[], model=FunctionModel(stream_function=stream)):
            pass

    with ThreadPoolExecutor(1, thread_name_prefix="evi360-warm-up") as thread:
        thread.submit(asyncio.run, run()).result()
