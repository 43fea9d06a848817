"""Question vectors at question time: batched, cached, and a failure that never fails a question."""

import asyncio
import concurrent.futures

import numpy as np
import pytest
from prometheus_client import REGISTRY

from citations import query_vectors
from citations.query_vectors import QueryVectors, follow_up


def fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("evi360_retrieval_fallbacks_total", {"reason": reason}) or 0.0


@pytest.fixture
def calls(monkeypatch):
    """Every batch the embedder is asked for, through the real built-in model."""
    from citations import embeddings

    seen: list[list[str]] = []
    embedder = embeddings.get_embedder()
    original = embedder.embed_query

    async def spy(texts, **kwargs):
        seen.append(list(texts))
        return await original(texts, **kwargs)

    monkeypatch.setattr(embedder, "embed_query", spy)
    return seen


async def test_questions_that_arrive_together_are_embedded_in_one_call(calls):
    vectors = QueryVectors()
    futures = [vectors.request(f"vraag {n} over tillen") for n in range(5)]
    results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
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


async def test_a_failing_provider_means_full_text_search_counted_and_logged(monkeypatch, caplog):
    from citations import embeddings

    async def fail(texts, **kwargs):
        raise RuntimeError("provider down")

    monkeypatch.setattr(embeddings.get_embedder(), "embed_query", fail)
    vectors = QueryVectors()
    before = fallbacks("error")
    assert await vectors.embed("tillen") is None
    future = vectors.request("werken op hoogte")
    await asyncio.sleep(0.05)
    assert await asyncio.to_thread(vectors.wait, future) is None
    assert fallbacks("error") == before + 2
    assert "answered from full-text search alone" in caplog.text


async def test_a_slow_provider_times_out_into_full_text_search(monkeypatch, settings):
    from citations import embeddings

    settings.EVI360_EMBEDDING_TIMEOUT = 0.05

    async def slow(texts, **kwargs):
        await asyncio.sleep(0.2)
        raise RuntimeError("too late anyway")

    monkeypatch.setattr(embeddings.get_embedder(), "embed_query", slow)
    before = fallbacks("timeout")
    vectors = QueryVectors()
    assert await asyncio.to_thread(vectors.wait, vectors.request("tillen")) is None
    assert await vectors.embed("lawaai") is None
    assert fallbacks("timeout") == before + 2
    await asyncio.sleep(0.3)  # let the slow calls end inside the test


async def test_a_database_thread_gets_a_vector_from_the_loop(calls):
    vectors = QueryVectors()
    loop = asyncio.get_running_loop()
    vector = await asyncio.to_thread(vectors.in_thread, "Hoe zwaar mag ik tillen?", loop)
    assert vector.shape == (512,) and calls == [["Hoe zwaar mag ik tillen?"]]
    assert await asyncio.to_thread(vectors.in_thread, "Hoe zwaar mag ik tillen?", loop) is vector  # cached


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
