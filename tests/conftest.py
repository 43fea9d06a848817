"""Fixtures shared by every test. No test ever reaches a real model: Pydantic AI refuses
model requests here, and tests of the Anthropic path talk to a stand-in on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydantic_ai.models
import pytest

pydantic_ai.models.ALLOW_MODEL_REQUESTS = False


@pytest.fixture(autouse=True)
def _fast_offline_model(settings):
    # The offline model pauses between words so people see it stream; tests don't need to wait.
    settings.EVI360_OFFLINE_TOKEN_DELAY_MS = 0


@pytest.fixture
def corpus(db) -> None:
    """The bundled sample corpus, loaded into the test database."""
    from citations.loader import BUNDLED_CORPUS
    from citations.services import load_paths

    report = load_paths([BUNDLED_CORPUS])
    assert not [r for r in report.results if r[1] == "skipped"], report.results


@pytest.fixture
def write_doc(tmp_path: Path):
    """Write a knowledge-base file under tmp_path and return its path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="module")
def script_file(tmp_path_factory) -> Path:
    """The scripted model's script for a module's live server (tests/support/browser_models.py)."""
    return tmp_path_factory.mktemp("script") / "script.json"


@pytest.fixture
def anthropic_upstream() -> Iterator[object]:
    """A stand-in of Anthropic's streaming Messages API on a free loopback port."""
    from tests.support.anthropic_standin import AnthropicStandIn

    with AnthropicStandIn() as upstream:
        yield upstream


@pytest.fixture
def small_kb(db, write_doc, tmp_path) -> None:
    """Three short sources: [1] lifting, [2] noise, [3] screen work, enough for most stream tests."""
    from citations.services import load_paths

    write_doc(
        "kb/tillen.md",
        "---\ntitle: Tillen\nurl: https://kb.example/tillen\nlanguage: nl\n---\n# Tillen\n\n"
        "Een werknemer tilt niet meer dan 23 kg. Gebruik een hulpmiddel bij zware lasten.\n",
    )
    write_doc(
        "kb/noise.md",
        "---\ntitle: Noise\nurl: https://kb.example/noise\nlanguage: en\n---\n# Noise\n\n"
        "Above 80 dB(A) the employer offers hearing protection; at 85 dB(A) wearing it is mandatory.\n",
    )
    write_doc(
        "kb/scherm.md",
        "---\ntitle: Beeldschermwerk\nlanguage: nl\n---\n# Beeldschermwerk\n\n"
        "Neem na twee uur beeldschermwerk een pauze van tien minuten.\n",
    )
    load_paths([tmp_path / "kb"])


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("specialist", password="a-long-pass-123")


@pytest.fixture
def scripted_model(monkeypatch):
    """Make the app's model a FunctionModel that streams the deltas a test chooses.

    ``script(deltas, gate=None, error=None)``: yields each delta; waits on ``gate`` (an
    asyncio.Event) before the last one if given; raises ``error`` at the end if given.
    """
    from pydantic_ai.models.function import FunctionModel

    from streaming.engine import agent

    state = {"deltas": ["Hallo"], "before": None, "error": None, "calls": 0, "cancelled": 0}

    async def stream(messages, info):
        import asyncio

        state["calls"] += 1
        try:
            for index, delta in enumerate(state["deltas"]):
                if state["before"] is not None and index == len(state["deltas"]) - 1:
                    await state["before"]()
                yield delta
            if state["error"] is not None:
                raise state["error"]
        except (asyncio.CancelledError, GeneratorExit):  # cancelled, or closed by its consumer
            state["cancelled"] += 1
            raise

    model = FunctionModel(stream_function=stream, model_name="scripted")
    monkeypatch.setattr(agent, "get_model", lambda: model)

    def script(deltas, before=None, error=None):
        state.update(deltas=deltas, before=before, error=error)
        return state

    return script


@pytest.fixture(autouse=True)
def _close_db_pool():
    # The streaming path's database threads keep connections; close them after each test so the
    # test database can be flushed or dropped.
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from evi360.db import close_pool

    close_pool()
    # Async tests' own ORM calls (aget, acreate) run on asgiref's single sync thread.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate-limit counters live in the cache (Redis in CI's second run): start every test clean.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def access_token():
    """A JWT access token for a user: ``access_token(user)``."""
    from rest_framework_simplejwt.tokens import AccessToken

    return lambda user: str(AccessToken.for_user(user))


def log_session(user, minutes_ago: float = 0, **fields):
    """A row of the stream log, created directly (defaults: a completed Dutch API stream)."""
    from datetime import timedelta

    from django.utils import timezone

    from streaming.models import StreamSession

    defaults = dict(
        query="Hoe zwaar mag ik tillen?",
        language="nl",
        model_name="offline",
        client_kind="api",
        status="completed",
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
    )
    return StreamSession.objects.create(user=user, **{**defaults, **fields})


def cite(session, title: str, marker: int = 1, offset: int = 15):
    """A citation in the stream log of the source titled ``title`` (its first passage), with the
    copies the stream's writer keeps."""
    from citations.models import Source
    from streaming.models import StreamCitation

    source = Source.objects.get(title=title)
    chunk = source.chunks.first()
    return StreamCitation.objects.create(
        session=session,
        marker=marker,
        source=source,
        chunk=chunk,
        title=source.title,
        url=source.url,
        text=chunk.text,
        page=chunk.page,
        offset=offset,
    )


async def new_session(user, query: str = "Hoe zwaar mag ik tillen?", language: str = "nl"):
    """A session opened the way the API opens one (row written, status streaming)."""
    from datetime import timedelta

    from asgiref.sync import sync_to_async

    from streaming.store import writes

    request = writes.SessionRequest(
        user_id=user.pk, query=query, language=language, model_name="scripted", client_kind="api"
    )
    (session,) = await sync_to_async(writes.open_sessions)(
        [request], max_concurrent=10, stale_after=timedelta(minutes=2)
    )
    return session


def parse_sse(raw: bytes) -> list[tuple[int, str, dict]]:
    """(id, event, data) of each event in an SSE body; comments and retry lines are skipped."""
    import json

    events = []
    for block in raw.decode().split("\n\n"):
        if not block or block.startswith((":", "retry:")):
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return events


async def stream_query(async_client, query: str, headers: dict) -> list[tuple[int, str, dict]]:
    """Ask ``query`` at POST /api/v1/stream/query and read the stream to its end: its events."""
    response = await async_client.post(
        "/api/v1/stream/query", {"query": query}, content_type="application/json", headers=headers
    )
    return parse_sse(b"".join([chunk async for chunk in response.streaming_content]))


async def streams_finished(seconds: float = 10.0) -> None:
    """Wait until this process's generations, their Redis copies and outcome writes have ended.
    A response is read to its end before its generation has written its outcome; a test that
    returns then closes its event loop under them, and the loop's teardown can wait for a
    cancelled Redis write that never ends (seen on PostgreSQL + Redis)."""
    import asyncio

    from streaming.engine.runtime import RUNTIME
    from streaming.eventlog.run import RUNS

    running = [t for run in list(RUNS.values()) for t in (run.task, run.mirror) if t and not t.done()]
    if running:
        await asyncio.wait(running, timeout=seconds)
    await RUNTIME.settled()


def redis_test_url(db: int) -> str | None:
    """Redis database ``db`` on REDIS_URL's server (or 127.0.0.1:6379), if it answers."""
    import os
    from urllib.parse import urlsplit, urlunsplit

    import redis

    url = urlunsplit(
        urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379")._replace(path=f"/{db}")
    )
    try:
        return url if redis.Redis.from_url(url, socket_connect_timeout=1).ping() else None
    except redis.RedisError:
        return None


@pytest.fixture
def dense_state():
    """Forget the process's embedder, question vectors and passage matrix before and after a test
    that changes the embedding settings."""
    from citations import embeddings
    from citations.query_vectors import VECTORS
    from citations.vectors import INDEX

    def reset() -> None:
        embeddings.get_embedder.cache_clear()
        VECTORS._cache.clear()
        INDEX.clear()

    reset()
    yield reset
    reset()


@pytest.fixture
def embedding_provider(settings, dense_state):
    """A stand-in of the providers' embeddings APIs on loopback; ``use(model)`` configures
    EVI360_EMBEDDING_MODEL to reach it through the real SDK (``openai:…``, ``voyageai:…``,
    ``cohere:…``), with model requests allowed for the test."""
    from pydantic_ai.models import override_allow_model_requests

    from tests.support.embedding_standin import EmbeddingStandIn

    with EmbeddingStandIn() as upstream, override_allow_model_requests(True):

        def use(model: str) -> EmbeddingStandIn:
            settings.EVI360_EMBEDDING_MODEL = model
            settings.EVI360_EMBEDDING_BASE_URL = upstream.url + ("" if model.startswith("cohere:") else "/v1")
            settings.EVI360_EMBEDDING_API_KEY = "test-key"
            dense_state()
            return upstream

        upstream.use = use
        yield upstream
