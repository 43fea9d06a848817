"""Question vectors at question time: batched, cached, and a failure that never fails a question."""

import asyncio
import concurrent.futures

import numpy as np
import pytest
from prometheus_client import REGISTRY

from citations import embeddings, query_vectors
from citations.query_vectors import Deferred, QueryVectors, follow_up


def fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("evi360_retrieval_fallbacks_total", {"reason": reason}) or 0.0


@pytest.fixture
def calls(monkeypatch):
    """Every batch the embedder is asked for on the event loop, through the real built-in model."""
    seen: list[list[str]] = []
    embedder = embeddings.get_embedder()
    original = embedder.embed_query

    async def spy(texts, **kwargs):
        seen.append(list(texts))
        return await original(texts, **kwargs)

    monkeypatch.setattr(embedder, "embed_query", spy)
    return seen


@pytest.fixture
def encodes(monkeypatch):
    """Every forward pass of the built-in model, in whichever thread."""
    model = embeddings.in_process_model()
    seen: list[list[str]] = []
    original = model.encode

    def spy(texts):
        seen.append(list(texts))
        return original(texts)

    monkeypatch.setattr(model, "encode", spy)
    return seen


async def test_the_built_in_model_embeds_a_trips_questions_in_one_pass(encodes):
    vectors = QueryVectors()
    handles = [vectors.request(f"vraag {n} over tillen") for n in range(5)]
    assert all(isinstance(h, Deferred) for h in handles)  # nothing is computed on the event loop
    assert encodes == []
    resolved = await asyncio.to_thread(vectors.resolve, [*handles, None, handles[0]])
    assert encodes == [[f"vraag {n} over tillen" for n in range(5)]]
    assert [v is None for v in resolved] == [False] * 5 + [True, False]
    assert np.array_equal(resolved[0], resolved[-1])
    # Kept: asked again, the vector is ready at once.
    again = vectors.request("vraag 1 over tillen")
    assert isinstance(again, concurrent.futures.Future) and np.array_equal(again.result(), resolved[1])


async def test_on_the_event_loop_questions_that_arrive_together_go_in_one_call(calls):
    vectors = QueryVectors()
    results = await asyncio.gather(*(vectors.embed(f"vraag {n} over tillen") for n in range(5)))
    # The first goes at once; the four that came while it ran, together in the next call.
    assert calls == [["vraag 0 over tillen"], [f"vraag {n} over tillen" for n in range(1, 5)]]
    assert all(r.shape == (512,) for r in results)


async def test_a_repeated_question_is_not_embedded_again(calls):
    vectors = QueryVectors()
    first = await vectors.embed("Hoe zwaar mag ik tillen?")
    again = await vectors.embed("Hoe zwaar mag ik tillen?")
    assert calls == [["Hoe zwaar mag ik tillen?"]] and np.array_equal(first, again)


async def test_the_cache_is_bounded(monkeypatch, calls):
    monkeypatch.setattr(query_vectors, "CACHE_SIZE", 2)
    vectors = QueryVectors()
    for text in ("een", "twee", "drie"):
        await vectors.embed(text)
    assert vectors.cached("een") is None and vectors.cached("drie") is not None


async def test_a_failing_model_means_full_text_search_counted_and_logged(monkeypatch, caplog):
    model = embeddings.in_process_model()

    def fail(texts):
        raise RuntimeError("no vectors today")

    async def fail_async(texts, **kwargs):
        raise RuntimeError("provider down")

    monkeypatch.setattr(model, "encode", fail)
    monkeypatch.setattr(embeddings.get_embedder(), "embed_query", fail_async)
    vectors = QueryVectors()
    before = fallbacks("error")
    assert await vectors.embed("tillen") is None
    assert await asyncio.to_thread(vectors.resolve, [vectors.request("werken op hoogte")]) == [None]
    assert fallbacks("error") == before + 2
    assert "answered from full-text search alone" in caplog.text


async def test_a_provider_is_asked_at_once_and_waited_for_in_the_thread(embedding_provider):
    upstream = embedding_provider.use("openai:bge-m3")
    vectors = QueryVectors()
    handle = vectors.request("Hoe zwaar mag ik tillen?")
    assert isinstance(handle, concurrent.futures.Future)  # the request is out, on the event loop
    [vector] = await asyncio.to_thread(vectors.resolve, [handle])
    assert vector.shape == (64,) and upstream.requests[-1][1]["input"] == ["Hoe zwaar mag ik tillen?"]


async def test_a_slow_provider_times_out_into_full_text_search(embedding_provider, settings):
    upstream = embedding_provider.use("voyageai:voyage-3.5")
    upstream.delay = 0.5
    settings.EVI360_EMBEDDING_TIMEOUT = 0.05
    before = fallbacks("timeout")
    vectors = QueryVectors()
    assert await asyncio.to_thread(vectors.wait, vectors.request("tillen")) is None
    assert await vectors.embed("lawaai") is None
    assert fallbacks("timeout") == before + 2
    await asyncio.sleep(0.6)  # let the slow requests end inside the test


async def test_a_database_thread_gets_a_follow_ups_previous_question(calls, encodes):
    vectors = QueryVectors()
    loop = asyncio.get_running_loop()
    vector = await asyncio.to_thread(vectors.in_thread, "Hoe zwaar mag ik tillen?", loop)
    assert vector.shape == (512,) and encodes == [["Hoe zwaar mag ik tillen?"]] and calls == []
    again = await asyncio.to_thread(vectors.in_thread, "Hoe zwaar mag ik tillen?", loop)
    assert np.array_equal(again, vector) and len(encodes) == 1  # kept


async def test_a_database_thread_gets_a_providers_vector_from_the_loop(embedding_provider):
    embedding_provider.use("cohere:embed-multilingual-v3.0")
    vectors = QueryVectors()
    vector = await asyncio.to_thread(vectors.in_thread, "tillen", asyncio.get_running_loop())
    assert vector.shape == (64,)


def test_dense_retrieval_off_requests_nothing(settings):
    settings.EVI360_EMBEDDING_MODEL = "none"
    vectors = QueryVectors()
    assert vectors.request("tillen") is None and vectors.wait(None) is None
    cancelled: concurrent.futures.Future = concurrent.futures.Future()
    cancelled.cancel()
    assert vectors.wait(cancelled) is None


def test_a_follow_up_searches_with_both_questions():
    own, previous = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    assert np.allclose(follow_up(own, previous), [2**-0.5, 2**-0.5])
    assert follow_up(own, None) is own
    assert follow_up(own, np.array([1.0, 0.0, 0.0], np.float32)) is own
    assert follow_up(own, -own) is own
