"""manage.py export_feedback: the feedback on answers as JSON Lines or CSV, for evaluation."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from citations.models import Source
from streaming.management.commands.export_feedback import parse_since
from streaming.models import AnswerFeedback, StreamCitation
from streaming.store import feedback_export
from tests.conftest import cite, log_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def feedback(user, small_kb):
    down = log_session(user, 5, answer="Maximaal 23 kg [1] [2].", language="nl")
    cite(down, "Tillen", 1)
    cite(down, "Noise", 2)
    # Its passage is gone since (a source deleted or re-uploaded): the text kept with it stays.
    StreamCitation.objects.filter(marker=2).update(chunk=None)
    given = AnswerFeedback.objects.create(
        session=down, rating="down", reasons=["incorrect"], comment="Te streng, “zegt” men"
    )
    old = AnswerFeedback.objects.create(session=log_session(user, 60 * 24 * 40), rating="up")
    AnswerFeedback.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    return given


def export(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_feedback", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_jsonl_holds_what_an_evaluation_needs(feedback):
    out, err = export("--since", "30d")
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert err.strip() == "1 feedback record(s) exported."
    session = feedback.session
    assert record == {
        "session_id": str(session.pk),
        "created_at": session.created_at.isoformat(),
        "rated_at": feedback.updated_at.isoformat(),
        "question": "Hoe zwaar mag ik tillen?",
        "language": "nl",
        "model": "offline",
        "answer": "Maximaal 23 kg [1] [2].",
        "sources": [
            {
                "marker": 1,
                "title": "Tillen",
                "url": "https://kb.example/tillen",
                "passage": Source.objects.get(title="Tillen").chunks.first().pk,
                "text": Source.objects.get(title="Tillen").chunks.first().text,
                "page": None,  # not a PDF
            },
            {
                "marker": 2,
                "title": "Noise",
                "url": "https://kb.example/noise",
                "passage": None,
                "text": Source.objects.get(title="Noise").chunks.first().text,
                "page": None,
            },
        ],
        "rating": "down",
        "reasons": ["incorrect"],
        "comment": "Te streng, “zegt” men",
    }
    assert len(export("--since", "60d")[0].splitlines()) == 2  # the old 👍 too


def test_csv_one_row_per_feedback_with_the_lists_as_json(feedback, tmp_path):
    target = tmp_path / "feedback.csv"
    out, _ = export("--format", "csv", "--output", str(target), "--since", "2000-01-01")
    assert out == ""
    rows = list(csv.DictReader(target.open(encoding="utf-8", newline="")))
    assert len(rows) == 2
    newest = rows[-1]
    assert newest["rating"] == "down" and newest["comment"] == "Te streng, “zegt” men"
    assert json.loads(newest["reasons"]) == ["incorrect"]
    assert [s["marker"] for s in json.loads(newest["sources"])] == [1, 2]
    assert list(rows[0]) == list(feedback_export.COLUMNS)


def test_since_takes_days_hours_and_iso_dates():
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert parse_since("30d", now) == now - timedelta(days=30)
    assert parse_since(" 12h ", now) == now - timedelta(hours=12)
    assert parse_since("2026-11-01T08:00:00+00:00", now) == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert parse_since("2026-11-01", now).date() in (
        datetime(2026, 11, 1).date(),
        datetime(2026, 10, 31).date(),
    )


@pytest.mark.parametrize("since", ["", "30", "d", "-3d", "3w", "2026-02-30", "yesterday", "999999d"])
def test_bad_since_is_a_clear_error(db, since):
    with pytest.raises(CommandError, match="--since"):
        export("--since", since)


def test_bad_format_and_output_are_clear_errors(db, tmp_path):
    with pytest.raises(CommandError, match="--format 'xml'"):
        export("--format", "xml")
    with pytest.raises(CommandError, match="--output"):
        export("--output", str(tmp_path / "missing" / "dir" / "f.jsonl"))
