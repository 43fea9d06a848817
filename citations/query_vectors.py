"""A question's vector, at question time: off the event loop, in batches, cached, never fatal.

``request(text)`` is called on the event loop when a question arrives, before the start's trip to
a database thread, and gives a handle that trip resolves (``resolve``) just before it retrieves:
- a provider's model (an HTTP request): the request goes out at once, on the event loop, and
  runs while the trip checks the rate limit and writes the session row. Questions that arrive
  while a request is out go together in the next one.
- the built-in model (CPU work in this process): the trip embeds the questions of all its starts
  in one forward pass, after the rate limit. Not in a thread beside the trip: both would hold the
  GIL for most of their work and take turns (docs/retrieval.md).
Vectors of recent questions are kept, so a repeated question, or the question before a
follow-up, is not embedded twice.

A provider that fails, or takes longer than ``EVI360_EMBEDDING_TIMEOUT``, does not fail the
stream: that question is answered from full-text search alone, which is logged and counted in
``evi360_retrieval_fallbacks_total`` (``/metrics``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Deferred:
    """A question the resolving database thread embeds itself (the built-in model)."""

    text: str


Handle = concurrent.futures.Future[np.ndarray] | Deferred


class QueryVectors:
    def __init__(self) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()  # the event loop and the database threads write it
        self._batch: Batch[str, np.ndarray] = Batch(runner=self._embed)

    async def _embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        embedder = embeddings.get_embedder()
        if embedder is None:
            raise embeddings.EmbeddingUnavailable("dense retrieval is off")
        unique = list(dict.fromkeys(texts))
        logger.debug("embedding %d questions in one call", len(unique))
        matrix = embeddings.as_matrix(await embedder.embed_query(unique), len(unique))
        vectors = dict(zip(unique, matrix, strict=True))
        for text, vector in vectors.items():
            self._remember(text, vector)
        return [vectors[text] for text in texts]

    def _remember(self, text: str, vector: np.ndarray) -> None:
        with self._cache_lock:
            self._cache[text] = vector
            self._cache.move_to_end(text)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def cached(self, text: str) -> np.ndarray | None:
        return self._cache.get(text)

    def request(self, text: str) -> Handle | None:
        """A handle on ``text``'s vector for a database thread to ``resolve`` (called on the event
        loop); ``None`` when dense retrieval is off."""
        if not embeddings.enabled():
            return None
        vector = self.cached(text)
        if vector is None and embeddings.in_process_model() is not None:
            return Deferred(text)
        future: concurrent.futures.Future[np.ndarray] = concurrent.futures.Future()
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

    def resolve(self, handles: Sequence[Handle | None]) -> list[np.ndarray | None]:
        """The vectors of ``handles`` (a database thread's starts): the deferred ones embedded here
        in one forward pass, the others waited for. ``None`` for a handle that is ``None`` or
        whose embedding failed or took too long (counted, logged)."""
        deferred = list(dict.fromkeys(h.text for h in handles if isinstance(h, Deferred)))
        here: dict[str, np.ndarray] = {}
        if deferred:
            for text, vector in zip(deferred, self._embed_here(deferred), strict=True):
                if vector is not None:
                    here[text] = vector
        return [
            here.get(h.text) if isinstance(h, Deferred) else self.wait(h) if h is not None else None
            for h in handles
        ]

    def _embed_here(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        model = embeddings.in_process_model()
        try:
            if model is None:
                raise embeddings.EmbeddingUnavailable("the in-process model is gone")
            matrix = embeddings.as_matrix(model.encode(texts), len(texts))
        except Exception as exc:
            fallback("error", f"{exc.__class__.__name__}: {exc}")
            return [None] * len(texts)
        logger.debug("embedded %d questions in a database thread", len(texts))
        for text, vector in zip(texts, matrix, strict=True):
            self._remember(text, vector)
        return list(matrix)

    def wait(self, future: concurrent.futures.Future[np.ndarray] | None) -> np.ndarray | None:
        """The vector, or ``None`` (counted, logged) if it failed or took too long. In a thread."""
        if future is None:
            return None
        if isinstance(future, Deferred):
            return self.resolve([future])[0]
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
        if embeddings.in_process_model() is not None:
            return self.resolve([Deferred(text)])[0]
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
        vector = self.cached(text)
        if vector is not None or not embeddings.enabled():
            return vector
        future = asyncio.ensure_future(self._batch.submit(text))
        try:
            return await asyncio.wait_for(future, settings.EVI360_EMBEDDING_TIMEOUT)
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
