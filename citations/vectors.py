"""Exact dense search in the process: the passage vectors of the configured model in one matrix.

Each worker loads the vectors once and keeps them with the knowledge base's version
(``IndexVersion``, bumped in every transaction that changes passages or vectors). A search first
reads that one number (in the caller's database trip) and reloads when it moved, so every worker
searches what is stored, whichever worker or command wrote it. A query is one matrix-vector
product (docs/retrieval.md, "Cost", has its time and memory, and where pgvector would take over).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db.models import Count

from . import embeddings
from .models import ChunkVector, IndexVersion

logger = logging.getLogger(__name__)

# Index of a language in Matrix.languages.
LANGUAGE_CODES = {"nl": 0, "en": 1}


# Hubness correction (CSLS, Conneau et al. 2018): some passages lie close to almost every
# question ("hubs": an introduction, a general paragraph) and crowd out the one that answers. A
# passage's score is its cosine minus HUB_WEIGHT times its mean cosine to its HUB_NEIGHBOURS
# nearest passages (among at most HUB_POOL of them, so a reload stays linear in the passages).
HUB_WEIGHT = 0.3
HUB_NEIGHBOURS = 10
HUB_POOL = 2048


@dataclass(frozen=True)
class Matrix:
    version: int
    model: str
    ids: np.ndarray  # chunk ids, int64
    languages: np.ndarray  # LANGUAGE_CODES of each passage's source, uint8
    vectors: np.ndarray  # float32 (passages, dimensions), rows L2-normalised
    hubness: np.ndarray  # float32 per passage: HUB_WEIGHT x its mean cosine to its neighbours

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def __len__(self) -> int:
        return len(self.ids)

    def _scores(self, vector: np.ndarray, language: str, language_bonus: float) -> np.ndarray:
        scores = self.vectors @ vector.astype(np.float32, copy=False)
        scores -= self.hubness
        if language_bonus:
            scores += language_bonus * (self.languages == LANGUAGE_CODES.get(language, 255))
        return scores

    def search(
        self, vector: np.ndarray, language: str, top: int, language_bonus: float = 0.0
    ) -> list[tuple[int, float]]:
        """The ``top`` (chunk id, dense score) nearest ``vector``, best first: cosine minus
        hubness, plus ``language_bonus`` for passages in ``language``."""
        if not len(self) or top < 1 or vector.shape[-1] != self.dimensions:
            return []
        scores = self._scores(vector, language, language_bonus)
        top = min(top, len(scores))
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in best]

    def scores(
        self,
        vector: np.ndarray,
        language: str,
        top: int,
        also: Sequence[int] = (),
        language_bonus: float = 0.0,
    ) -> dict[int, float]:
        """Dense scores of the ``top`` nearest passages and of the passages ``also`` names (those
        without a vector are left out), best first."""
        if not len(self) or top < 1 or vector.shape[-1] != self.dimensions:
            return {}
        scores = self._scores(vector, language, language_bonus)
        top = min(top, len(scores))
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best], kind="stable")]
        result = {int(self.ids[i]): float(scores[i]) for i in best}
        if also:
            wanted = np.asarray(also, dtype=np.int64)
            rows = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
            for chunk_id, row in zip(wanted.tolist(), rows.tolist(), strict=True):
                if self.ids[row] == chunk_id:
                    result.setdefault(chunk_id, float(scores[row]))
        return result


def _empty(version: int, model: str) -> Matrix:
    nothing = np.empty(0, np.float32)
    return Matrix(
        version, model, np.empty(0, np.int64), np.empty(0, np.uint8), np.empty((0, 0), np.float32), nothing
    )


def hubness(vectors: np.ndarray, weight: float = HUB_WEIGHT) -> np.ndarray:
    """``weight`` x each row's mean cosine to its ``HUB_NEIGHBOURS`` nearest other rows of a pool
    of at most ``HUB_POOL`` rows (all of them when there are fewer), in blocks of bounded memory."""
    count = len(vectors)
    if count < 2 or not weight:
        return np.zeros(count, np.float32)
    pool_ids = (
        np.arange(count)
        if count <= HUB_POOL
        else np.random.default_rng(0).choice(count, HUB_POOL, replace=False)
    )
    pool = vectors[pool_ids]
    neighbours = min(HUB_NEIGHBOURS, len(pool) - 1)
    result = np.empty(count, np.float32)
    for start in range(0, count, 1024):
        block = vectors[start : start + 1024] @ pool.T
        # A row is not its own neighbour.
        rows, cols = np.nonzero(pool_ids[None, :] == np.arange(start, start + len(block))[:, None])
        block[rows, cols] = -np.inf
        nearest = np.partition(block, len(pool) - neighbours, axis=1)[:, -neighbours:]
        result[start : start + len(block)] = nearest.mean(axis=1)
    return (weight * result).astype(np.float32)


def load(version: int, model: str) -> Matrix:
    """Every stored vector of ``model`` (those of one dimension: the most common one), read in
    batches straight into the matrix (no list of all rows, no joined copy)."""
    stored = ChunkVector.objects.filter(model=model)
    counts = dict(stored.values_list("dimensions").annotate(n=Count("chunk_id")).order_by())
    if not counts:
        return _empty(version, model)
    dims = max(counts, key=lambda d: (counts[d], d))  # on a tie, the larger
    if len(counts) > 1:
        skipped = sum(counts.values()) - counts[dims]
        logger.warning("%d vectors of %s have another dimension than %d; skipped", skipped, model, dims)
    size = counts[dims]
    ids = np.empty(size, np.int64)
    languages = np.empty(size, np.uint8)
    matrix = np.empty((size, dims), np.float32)
    rows = (
        stored.filter(dimensions=dims)
        .order_by("chunk_id")
        .values_list("chunk_id", "chunk__source__language", "vector")
        .iterator(chunk_size=2000)
    )
    count = 0
    for chunk_id, language, vector in rows:
        if count == size:  # written since the count: the next version check reloads
            break
        if len(vector) != dims * 4:
            continue
        ids[count], languages[count] = chunk_id, LANGUAGE_CODES.get(language, 255)
        matrix[count] = np.frombuffer(vector, dtype="<f4")
        count += 1
    matrix = matrix[:count]
    return Matrix(version, model, ids[:count], languages[:count], matrix, hubness(matrix))


class VectorIndex:
    """The process's matrix, reloaded when the knowledge base's version moves. Thread-safe: one
    thread reloads while the others go on searching the matrix they have."""

    def __init__(self) -> None:
        self._matrix: Matrix | None = None
        self._loading = threading.Lock()

    def current(self) -> Matrix:
        """The matrix of what is stored now (one query; a reload when the version moved). Runs
        in a database thread."""
        model = embeddings.model_name()
        version = IndexVersion.current()
        held = self._matrix
        if held is not None and held.version == version and held.model == model:
            return held
        if not self._loading.acquire(blocking=held is None):
            return held  # type: ignore[return-value]  # another thread is loading the new one
        try:
            held = self._matrix
            if held is None or held.version != version or held.model != model:
                held = self._matrix = load(version, model)
            return held
        finally:
            self._loading.release()

    def clear(self) -> None:
        self._matrix = None


INDEX = VectorIndex()


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()
