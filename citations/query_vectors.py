"""A question's vector, at question time: off the event loop, in batches, cached, never fatal.

``request(text)`` is called on the event loop when a question arrives, before the start's trip to
a database thread: the embedding then runs while that trip checks the rate limit and writes the
session row, and the database thread picks the vector up (``wait``) just before it retrieves.
Questions that arrive while an embedding call is running go together in the next call (one
forward pass, or one request to the provider, for a burst). Vectors of recent questions are kept,
so a repeated question, or the question before a follow-up, is not embedded twice.

A provider that fails, or takes longer than ``EVI360_EMBEDDING_TIMEOUT``, does not fail the
stream: that question is answered from full-text search alone, which is logged and counted in
``evi360_retrieval_fallbacks_total`` (``/metrics``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from prometheus_client import Counter

from evi360.db import Batch

from . import embeddings

logger = logging.getLogger(__name__)

FALLBACKS = Counter(
    "evi360_retrieval_fallbacks_total",
    "Questions answered from full-text search alone because their embedding failed",
    ["reason"],
)
CACHE_SIZE = 1024


class QueryVectors:
    def __init__(self) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._batch: Batch[str, np.ndarray] = Batch(runner=self._embed)

    async def _embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        embedder = embeddings.get_embedder()
        if embedder is None:
            raise embeddings.EmbeddingUnavailable("dense retrieval is off")
        unique = list(dict.fromkeys(texts))
        matrix = embeddings.as_matrix(await embedder.embed_query(unique), len(unique))
        vectors = dict(zip(unique, matrix, strict=True))
        for text, vector in vectors.items():
            self._remember(text, vector)
        return [vectors[text] for text in texts]

    def _remember(self, text: str, vector: np.ndarray) -> None:
        self._cache[text] = vector
        self._cache.move_to_end(text)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def cached(self, text: str) -> np.ndarray | None:
        return self._cache.get(text)

    def request(self, text: str) -> concurrent.futures.Future[np.ndarray] | None:
        """Start embedding ``text`` (on the event loop); ``None`` when dense retrieval is off.
        The future is for a database thread to ``wait`` on."""
        if not embeddings.enabled():
            return None
        future: concurrent.futures.Future[np.ndarray] = concurrent.futures.Future()
        vector = self.cached(text)
        if vector is not None:
            future.set_result(vector)
            return future
        task = asyncio.ensure_future(self._batch.submit(text))

        def settle(done: asyncio.Future[np.ndarray]) -> None:
            if done.cancelled():
                future.cancel()
            elif (error := done.exception()) is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result())

        task.add_done_callback(settle)
        return future

    def wait(self, future: concurrent.futures.Future[np.ndarray] | None) -> np.ndarray | None:
        """The vector, or ``None`` (counted, logged) if it failed or took too long. In a thread."""
        if future is None:
            return None
        try:
            return future.result(timeout=settings.EVI360_EMBEDDING_TIMEOUT)
        except concurrent.futures.TimeoutError:
            fallback("timeout", f"no embedding within {settings.EVI360_EMBEDDING_TIMEOUT:g} s")
        except concurrent.futures.CancelledError:
            fallback("cancelled", "the embedding was cancelled")
        except Exception as exc:
            fallback("error", f"{exc.__class__.__name__}: {exc}")
        return None

    def in_thread(self, text: str, loop: asyncio.AbstractEventLoop) -> np.ndarray | None:
        """``text``'s vector from a database thread: cached, or embedded on ``loop`` meanwhile."""
        vector = self.cached(text)
        if vector is not None or not embeddings.enabled():
            return vector
        handed: concurrent.futures.Future[concurrent.futures.Future[np.ndarray] | None] = (
            concurrent.futures.Future()
        )
        loop.call_soon_threadsafe(lambda: handed.set_result(self.request(text)))
        try:
            return self.wait(handed.result(timeout=settings.EVI360_EMBEDDING_TIMEOUT))
        except concurrent.futures.TimeoutError:
            fallback("timeout", "the event loop did not take the embedding in time")
            return None

    async def embed(self, text: str) -> np.ndarray | None:
        """``text``'s vector on the event loop, or ``None`` (counted, logged) if it failed."""
        future = self.request(text)
        if future is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), settings.EVI360_EMBEDDING_TIMEOUT)
        except TimeoutError:
            fallback("timeout", f"no embedding within {settings.EVI360_EMBEDDING_TIMEOUT:g} s")
        except Exception as exc:
            fallback("error", f"{exc.__class__.__name__}: {exc}")
        return None


def fallback(reason: str, detail: str) -> None:
    FALLBACKS.labels(reason=reason).inc()
    logger.warning("question embedding failed (%s); answered from full-text search alone", detail)


def follow_up(vector: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """A follow-up's vector ("en voor zwangere werknemers?"): its own and the question before it,
    together (the full-text side searches their words together too)."""
    if previous is None or previous.shape != vector.shape:
        return vector
    combined = vector + previous
    norm = float(np.linalg.norm(combined))
    return combined / norm if norm > 0 else vector


VECTORS = QueryVectors()
