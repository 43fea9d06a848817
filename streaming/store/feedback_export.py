"""The feedback on answers as records for evaluation (``manage.py export_feedback`` and the admin's
action share them): each holds the question, the answer, what it cited (with the passages' text)
and the rating, so a set of 👎 becomes a regression set. JSON Lines, or CSV with one row per
feedback and the lists (reasons, sources) as JSON in their columns."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

from django.db.models import QuerySet

from streaming.models import AnswerFeedback

FORMATS = ("jsonl", "csv")
COLUMNS = (
    "session_id",
    "created_at",
    "rated_at",
    "question",
    "language",
    "model",
    "answer",
    "sources",
    "rating",
    "reasons",
    "comment",
)
_BATCH = 500  # rows fetched at a time: an export of months of feedback is not read whole


def feedback_given(
    since: datetime | None = None, session_ids: Iterable[Any] | QuerySet | None = None
) -> QuerySet:
    """The feedback given at ``since`` or later and/or on these sessions (ids, or a query of
    them), oldest first."""
    found = AnswerFeedback.objects.all()
    if since is not None:
        found = found.filter(created_at__gte=since)
    if session_ids is not None:
        found = found.filter(session_id__in=session_ids)
    return found.select_related("session").prefetch_related("session__citations").order_by("created_at", "pk")


def records(feedback: QuerySet) -> Iterator[dict[str, Any]]:
    """One record per feedback (``COLUMNS``); a cited passage's text and page are the copies kept
    with the citation, so they outlive the passage (``passage`` is then null)."""
    for given in feedback.iterator(chunk_size=_BATCH):
        session = given.session
        yield {
            "session_id": str(session.pk),
            "created_at": session.created_at.isoformat(),
            "rated_at": given.updated_at.isoformat(),
            "question": session.query,
            "language": session.language,
            "model": session.model_name,
            "answer": session.answer,
            "sources": [
                {
                    "marker": c.marker,
                    "title": c.title,
                    "url": c.url,
                    "passage": c.chunk_id,
                    "text": c.text or None,  # null: a row from before 0009 whose passage was gone
                    "page": c.page,
                }
                for c in session.citations.all()
            ],
            "rating": given.rating,
            "reasons": given.reasons,
            "comment": given.comment,
        }


def write(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    """``rows`` to ``out`` as ``fmt`` (``FORMATS``); how many were written."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            lists = {name: json.dumps(row[name], ensure_ascii=False) for name in ("sources", "reasons")}
            writer.writerow({**row, **lists})
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    else:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    return count
