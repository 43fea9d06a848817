"""The dashboard's feedback figures (streaming/monitoring/stats.py, charts.py) on known data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from streaming.models import AnswerFeedback
from streaming.monitoring import charts, stats
from tests.conftest import log_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated(user):
    """Answers of 30 min, 2 h and 3 h ago, and 10 days ago (outside every window but 30 d)."""
    now = timezone.now()

    def rate(minutes_ago: float, rating: str, **fields) -> AnswerFeedback:
        given = AnswerFeedback.objects.create(session=log_session(user, minutes_ago), rating=rating, **fields)
        # Given a minute after the answer.
        AnswerFeedback.objects.filter(pk=given.pk).update(created_at=now - timedelta(minutes=minutes_ago - 1))
        return given

    rate(30, "down", reasons=["incorrect"], comment="Klopt niet")
    rate(31, "up")
    rate(120, "up")
    rate(180, "down", reasons=["incomplete"])
    rate(60 * 24 * 10, "down")
    log_session(user, 40)  # not rated
    return now


def test_the_summary_counts_ratings_and_the_down_rate(rated):
    s = stats.summary(rated - timedelta(hours=24), rated + timedelta(seconds=1))
    assert s.total == 5
    assert s.feedback == {"up": 2, "down": 2}
    assert s.down_rate() == 0.5
    assert s.as_dict()["feedback"] == {"up": 2, "down": 2, "down_rate": 0.5}
    month = stats.summary(rated - timedelta(days=30), rated + timedelta(seconds=1))
    assert month.feedback == {"up": 2, "down": 3} and month.total == 6
    assert stats.summary(rated - timedelta(days=100), rated - timedelta(days=50)).down_rate() is None


def test_the_timeline_has_the_feedback_per_bucket(rated):
    buckets = stats.timeline(rated - timedelta(hours=4), rated + timedelta(seconds=1))
    rated_buckets = [b.feedback for b in buckets if b.feedback]
    assert sum(f.get("up", 0) for f in rated_buckets) == 2
    assert sum(f.get("down", 0) for f in rated_buckets) == 2
    # 120 and 180 min ago are an hour apart: in buckets of their own, one 👍, one 👎.
    three_hours_ago = AnswerFeedback.objects.get(reasons=["incomplete"]).session.created_at
    (bucket,) = [b for b in buckets if b.start <= three_hours_ago < b.start + timedelta(hours=1)]
    assert bucket.feedback == {"down": 1} and bucket.down_rate() == 1.0
    assert [b.down_rate() for b in buckets if not b.feedback] == [None] * (len(buckets) - len(rated_buckets))


def test_the_latest_down_answers_newest_first_within_the_window(rated):
    latest = stats.latest_down(rated - timedelta(hours=24), rated + timedelta(seconds=1))
    # Newest first; the 👎 of 10 days ago is outside the window, the 👍 are not 👎.
    assert [f.reasons for f in latest] == [["incorrect"], ["incomplete"]]
    assert latest[0].session.query == "Hoe zwaar mag ik tillen?" and latest[0].comment == "Klopt niet"


def test_the_charts_draw_the_ratings_and_the_rate(rated):
    buckets = stats.timeline(rated - timedelta(hours=4), rated + timedelta(seconds=1))
    labels = [str(i) for i in range(len(buckets))]
    bars = charts.feedback_by_rating(buckets, labels)
    assert bars.startswith("<svg") and "👍" in bars and "👎" in bars and "<rect" in bars
    line = charts.down_rate(buckets, labels)
    assert "👎 rate" in line and " %</title>" in line and "<circle" in line
