"""The in-process matrix of passage vectors: what it holds, how it searches, when it reloads."""

import threading

import numpy as np
import pytest

from citations import vectors
from citations.models import Chunk, ChunkVector, IndexVersion
from citations.services import load_paths
from citations.vectors import Matrix, VectorIndex, hubness, to_bytes

pytestmark = pytest.mark.django_db


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_the_matrix_holds_every_vector_of_the_configured_model(small_kb):
    matrix = VectorIndex().current()
    assert len(matrix) == Chunk.objects.count() == 3
    assert matrix.model == "local:use-multilingual-v3" and matrix.dimensions == 512
    assert list(matrix.ids) == sorted(Chunk.objects.values_list("id", flat=True))
    assert set(matrix.languages.tolist()) == {0, 1}  # nl and en
    assert np.allclose(np.linalg.norm(matrix.vectors, axis=1), 1.0, atol=1e-5)


def test_vectors_of_another_model_or_dimension_are_left_out(small_kb, caplog):
    first, second, third = Chunk.objects.order_by("id")
    ChunkVector.objects.filter(chunk=first).update(model="openai:text-embedding-3-small")
    ChunkVector.objects.filter(chunk=second).update(dimensions=3, vector=to_bytes(unit(1, 2, 3)))
    IndexVersion.bump()
    matrix = VectorIndex().current()
    assert list(matrix.ids) == [third.id]
    assert "another dimension" in caplog.text


def test_a_worker_reloads_when_another_changed_the_knowledge_base(small_kb, write_doc, tmp_path):
    worker = VectorIndex()  # another process's index: nobody clears it
    before = worker.current()
    assert worker.current() is before  # unchanged: the same matrix, one version query
    write_doc("more/hoogte.md", "---\nlanguage: nl\n---\n# Hoogte\n\nValbeveiliging vanaf 2,5 meter.\n")
    load_paths([tmp_path / "more"])
    after = worker.current()
    assert after is not before and len(after) == len(before) + 1 and after.version > before.version


def test_one_thread_reloads_while_the_others_search_what_they_have(small_kb):
    index = VectorIndex()
    held = index.current()
    IndexVersion.bump()
    index._loading.acquire()  # another thread is loading the new version
    try:
        assert index.current() is held
    finally:
        index._loading.release()
    assert index.current() is not held


def test_search_and_scores():
    ids = np.array([10, 20, 30], dtype=np.int64)
    rows = np.stack([unit(1, 0, 0), unit(1, 1, 0), unit(0, 0, 1)])
    matrix = Matrix(1, "m", ids, np.array([0, 1, 0], np.uint8), rows, np.zeros(3, np.float32))
    assert [i for i, _ in matrix.search(unit(1, 0.1, 0), "nl", 2)] == [10, 20]
    assert [i for i, _ in matrix.search(unit(1, 0.1, 0), "en", 2, language_bonus=0.5)] == [20, 10]
    scores = matrix.scores(unit(1, 0, 0), "nl", 1, also=[30, 99])
    assert list(scores) == [10, 30] and scores[30] == pytest.approx(0.0, abs=1e-6)
    assert matrix.search(unit(1, 0), "nl", 2) == []  # a vector of another dimension finds nothing
    assert matrix.search(unit(1, 0, 0), "nl", 0) == []


def test_hubness_marks_passages_near_everything():
    spread = np.eye(64, dtype=np.float32)  # each far from the others
    hub = np.ones((1, 64), dtype=np.float32) / 8  # as near to all of them
    scores = hubness(np.concatenate([spread, hub]), weight=1.0)
    assert scores.shape == (65,) and scores.argmax() == 64
    assert scores[64] == pytest.approx(0.125) and scores[0] == pytest.approx(0.0125)
    assert hubness(spread[:1]).tolist() == [0.0]


def test_hubness_of_a_large_matrix_uses_a_pool(monkeypatch):
    monkeypatch.setattr(vectors, "HUB_POOL", 50)
    rows = np.random.default_rng(2).normal(size=(300, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    scores = hubness(rows)
    assert scores.shape == (300,) and np.all(np.isfinite(scores))


@pytest.mark.django_db(transaction=True)
def test_concurrent_readers_get_a_whole_matrix(small_kb):
    index = VectorIndex()
    seen = []

    def read() -> None:
        from django.db import connections

        try:
            seen.append(len(index.current()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [3, 3, 3, 3]
