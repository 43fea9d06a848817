"""Writes to the knowledge base: documents, their passages and the passages' vectors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
from django.db import transaction
from django.utils import timezone

from . import analysis, embeddings
from .loader import Document, DocumentError, expand_paths, read_document
from .models import Chunk, ChunkVector, IndexVersion, Source
from .vectors import INDEX, to_bytes


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"


@dataclass
class LoadReport:
    results: list[tuple[Path, Outcome, str]] = field(default_factory=list)
    embedded: int = 0  # passages given a vector of the configured model by this load
    reused: int = 0  # passages whose text was unchanged kept the vector they had

    def count(self, outcome: Outcome) -> int:
        return sum(1 for _, o, _ in self.results if o is outcome)


def passage_input(title: str, heading_path: str, text: str) -> str:
    """What a passage's vector is made of: where it stands in its document, then its text."""
    where = (
        heading_path if heading_path.startswith(title) else " > ".join(p for p in (title, heading_path) if p)
    )
    return f"{where}\n{text}"


def _vector_row(chunk: Chunk, vector: np.ndarray, model: str) -> ChunkVector:
    return ChunkVector(chunk=chunk, model=model, dimensions=int(vector.shape[0]), vector=to_bytes(vector))


def store_document(document: Document, vectors: np.ndarray | None = None, model: str = "") -> Outcome:
    """Create or replace one source and its chunks (and their ``vectors``, one row per chunk);
    unchanged content is a no-op. Call it inside a transaction."""
    source = Source.objects.select_for_update().filter(origin=document.origin).first()
    if source is not None and source.content_hash == document.content_hash:
        return Outcome.UNCHANGED
    outcome = Outcome.CREATED if source is None else Outcome.UPDATED
    if source is None:
        source = Source(origin=document.origin)
    source.title = document.title
    source.url = document.url
    source.language = document.language
    source.content_hash = document.content_hash
    source.loaded_at = timezone.now()
    source.save()
    source.chunks.all().delete()
    chunks = Chunk.objects.bulk_create(
        Chunk(
            source=source,
            position=c.position,
            heading_path=c.heading_path,
            text=c.text,
            page=c.page,
            # Title and headings are the strongest clue of what a passage is about: index them too.
            search_text=analysis.search_text(
                f"{document.title}\n{c.heading_path}\n{c.text}", document.language
            ),
        )
        for c in document.chunks
    )
    if vectors is not None:
        ChunkVector.objects.bulk_create(
            _vector_row(c, v, model) for c, v in zip(chunks, vectors, strict=True)
        )
    return outcome


def _known_vectors(origins: Sequence[str], model: str) -> dict[str, bytes]:
    """Vectors the passages of these sources have now, by what they were made of: a changed file
    keeps the vectors of the passages whose text did not change."""
    known: dict[str, bytes] = {}
    rows = ChunkVector.objects.filter(model=model, chunk__source__origin__in=origins).values_list(
        "chunk__source__title", "chunk__heading_path", "chunk__text", "vector"
    )
    for title, heading_path, text, vector in rows.iterator():
        known[passage_input(title, heading_path, text)] = bytes(vector)
    return known


def _vectors_for(inputs: Sequence[str], known: dict[str, bytes], report: LoadReport) -> np.ndarray:
    missing = [text for text in dict.fromkeys(inputs) if text not in known]
    if missing:
        for text, vector in zip(missing, embeddings.embed_documents_sync(missing), strict=True):
            known[text] = to_bytes(vector)
        report.embedded += len(missing)
    report.reused += sum(1 for text in inputs if text not in missing)
    return np.stack([np.frombuffer(known[text], dtype="<f4") for text in inputs])


def load_paths(paths: Iterable[Path], progress: Callable[[int, int, Path], None] | None = None) -> LoadReport:
    """Load files into the knowledge base, and give every passage that lacks one a vector of the
    configured embedding model (all of them after a change of model).

    Files are read and passages embedded before anything is written; then it is all written in
    one transaction. A bad file is reported and skipped; a model that cannot embed raises
    ``embeddings.EmbeddingUnavailable`` and leaves the knowledge base as it was. ``progress`` is
    called with (files read, files in all, the file) after each file."""
    report = LoadReport()
    documents: list[tuple[Path, Document]] = []
    files = list(expand_paths(paths))
    for done, path in enumerate(files, start=1):
        try:
            documents.append((path, read_document(path)))
        except (DocumentError, OSError) as exc:
            report.results.append((path, Outcome.SKIPPED, str(exc)))
        if progress is not None:
            progress(done, len(files), path)
    hashes = dict(
        Source.objects.filter(origin__in=[d.origin for _, d in documents]).values_list(
            "origin", "content_hash"
        )
    )
    changed = [d for _, d in documents if hashes.get(d.origin) != d.content_hash]
    dense = embeddings.enabled()
    model = embeddings.model_name()
    vectors = _vectors_of(changed, model, report) if dense and changed else {}
    # Passages of unchanged sources lacking a vector of this model (a change of model: all).
    stale = _stale_chunks(model, exclude_origins=[d.origin for d in changed]) if dense else []
    stale_vectors = _vectors_for([text for _, text in stale], {}, report) if stale else None
    with transaction.atomic():
        for path, document in documents:
            outcome = store_document(document, vectors.get(document.origin), model)
            report.results.append((path, outcome, f"{len(document.chunks)} chunks"))
        if stale_vectors is not None:
            _replace_vectors([chunk_id for chunk_id, _ in stale], stale_vectors, model)
        IndexVersion.bump()
    INDEX.clear()  # this process reloads at once; the others when they see the version move
    return report


def _vectors_of(changed: Sequence[Document], model: str, report: LoadReport) -> dict[str, np.ndarray]:
    """The vectors of changed documents' passages, by origin (unchanged passages keep theirs)."""
    known = _known_vectors([d.origin for d in changed], model)
    inputs = [[passage_input(d.title, c.heading_path, c.text) for c in d.chunks] for d in changed]
    flat = _vectors_for([text for texts in inputs for text in texts], known, report)
    vectors: dict[str, np.ndarray] = {}
    offset = 0
    for document, texts in zip(changed, inputs, strict=True):
        vectors[document.origin] = flat[offset : offset + len(texts)]
        offset += len(texts)
    return vectors


def load_document(document: Document, then: Callable[[Outcome], None]) -> Outcome:
    """Embed and store one parsed document (an upload); ``then`` runs in the same transaction,
    so what records the outcome commits with the passages or not at all."""
    report = LoadReport()
    model = embeddings.model_name()
    unchanged = Source.objects.filter(origin=document.origin, content_hash=document.content_hash).exists()
    vectors = _vectors_of([document], model, report) if embeddings.enabled() and not unchanged else {}
    with transaction.atomic():
        outcome = store_document(document, vectors.get(document.origin), model)
        then(outcome)
        IndexVersion.bump()
    INDEX.clear()
    return outcome


def _stale_chunks(model: str, exclude_origins: Sequence[str] = ()) -> list[tuple[int, str]]:
    """Passages without a vector of ``model`` (new to it, or embedded by another model)."""
    rows = (
        Chunk.objects.exclude(vector__model=model)
        .exclude(source__origin__in=exclude_origins)
        .values_list("id", "source__title", "heading_path", "text")
    )
    return [(chunk_id, passage_input(title, heading, text)) for chunk_id, title, heading, text in rows]


def _replace_vectors(chunk_ids: Sequence[int], vectors: np.ndarray, model: str) -> None:
    ChunkVector.objects.filter(chunk_id__in=chunk_ids).delete()
    existing = set(Chunk.objects.filter(id__in=chunk_ids).values_list("id", flat=True))
    ChunkVector.objects.bulk_create(
        ChunkVector(chunk_id=chunk_id, model=model, dimensions=int(v.shape[0]), vector=to_bytes(v))
        for chunk_id, v in zip(chunk_ids, vectors, strict=True)
        if chunk_id in existing
    )


def embed_stale(*, everything: bool = False) -> int:
    """Give every passage lacking one a vector of the configured model (``everything``: all
    passages anew); returns how many were embedded. Nothing is written if embedding fails."""
    if not embeddings.enabled():
        return 0
    model = embeddings.model_name()
    if everything:
        rows = Chunk.objects.values_list("id", "source__title", "heading_path", "text")
        stale = [(chunk_id, passage_input(title, heading, text)) for chunk_id, title, heading, text in rows]
    else:
        stale = _stale_chunks(model)
    if not stale:
        return 0
    report = LoadReport()
    vectors = _vectors_for([text for _, text in stale], {}, report)
    with transaction.atomic():
        _replace_vectors([chunk_id for chunk_id, _ in stale], vectors, model)
        IndexVersion.bump()
    INDEX.clear()
    return len(stale)
