"""Writes to the knowledge base."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from . import analysis
from .loader import Document, DocumentError, expand_paths, read_document
from .models import Chunk, Source


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"


@dataclass
class LoadReport:
    results: list[tuple[Path, Outcome, str]] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for _, o, _ in self.results if o is outcome)


@transaction.atomic
def store_document(document: Document) -> Outcome:
    """Create or replace one source and its chunks in one transaction; unchanged content is a no-op."""
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
    Chunk.objects.bulk_create(
        Chunk(
            source=source,
            position=c.position,
            heading_path=c.heading_path,
            text=c.text,
            # Title and headings are the strongest clue of what a passage is about: index them too.
            search_text=analysis.search_text(
                f"{document.title}\n{c.heading_path}\n{c.text}", document.language
            ),
        )
        for c in document.chunks
    )
    return outcome


def load_paths(paths: Iterable[Path]) -> LoadReport:
    report = LoadReport()
    for path in expand_paths(paths):
        try:
            document = read_document(path)
        except (DocumentError, OSError) as exc:
            report.results.append((path, Outcome.SKIPPED, str(exc)))
            continue
        report.results.append((path, store_document(document), f"{len(document.chunks)} chunks"))
    return report
