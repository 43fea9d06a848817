"""streaming/monitoring/stats.py: dashboard figures against a fixture of sessions with known outcomes and times."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from streaming.monitoring import stats
from tests.conftest import log_session

pytestmark = pytest.mark.django_db
NOW = timezone.now()


@pytest.fixture
def log(user, settings):
    # "Now" is taken when the rows are written, not at import: a slow run must not shift the windows.
    global NOW
    NOW = timezone.now()
    settings.EVI360_STREAM_TIMEOUT = 60
    settings.EVI360_INTERRUPTED_MARGIN = 60

    def add(minutes_ago, status, ttft=None, duration=None, code=""):
        log_session(user, minutes_ago, status=status, ttft_ms=ttft, duration_ms=duration, error_code=code)

    # Completed: TTFT 100..1000 ms (10 values), durations 1..10 s.
    for i in range(10):
        add(30 + i, "completed", ttft=100 * (i + 1), duration=1000 * (i + 1))
    add(50, "error", ttft=250, duration=2000, code="upstream_unavailable")
    add(51, "error", duration=300, code="upstream_unavailable")
    add(52, "error", duration=400, code="internal")
    add(53, "cancelled", ttft=50, duration=700, code="cancelled")
    add(54, "timeout", ttft=900, duration=60_000, code="timeout")
    add(55, "interrupted", code="interrupted")
    add(1, "streaming")  # running now
    add(60 * 24 * 8, "completed", ttft=99_999, duration=99_999)  # outside every window but 30 d


def test_counts_and_rates_in_the_window(log):
    s = stats.summary(NOW - timedelta(hours=24), NOW)
    assert s.total == 17
    assert s.by_status == {
        "streaming": 1,
        "completed": 10,
        "error": 3,
        "cancelled": 1,
        "timeout": 1,
        "interrupted": 1,
    }
    assert s.rate("completed") == 10 / 17
    assert s.rate("error") == 3 / 17
    assert s.rate("cancelled") == s.rate("timeout") == 1 / 17
    assert s.active == 1
    assert s.over_timeout == 1
    # Cancelled streams are not errors; interrupted ones are.
    assert s.errors == [("upstream_unavailable", 2), ("internal", 1), ("interrupted", 1), ("timeout", 1)]


def test_percentiles_are_nearest_rank(log):
    s = stats.summary(NOW - timedelta(hours=24), NOW)
    # TTFT values: 50, 100..1000 (10), 250, 900 -> 13 values sorted:
    # 50 100 200 250 300 400 500 600 700 800 900 900 1000
    assert s.ttft == {50: 500, 95: 1000, 99: 1000}
    # Durations, 15 values sorted: 300 400 700 1000 2000 2000 3000 4000 ... 10000 60000;
    # p50 is rank ceil(7.5) = 8, p95 rank ceil(14.25) = 15.
    assert s.duration == {50: 4000, 95: 60_000, 99: 60_000}


def test_the_window_limits_everything(log):
    assert stats.summary(NOW - timedelta(days=30), NOW).total == 18
    s = stats.summary(NOW - timedelta(minutes=40), NOW)
    assert s.total == 11  # 10 completed within 30..39 minutes, plus the running one
    empty = stats.summary(NOW - timedelta(days=60), NOW - timedelta(days=59))
    assert (empty.total, empty.rate("completed"), empty.ttft) == (0, None, {50: None, 95: None, 99: None})


def test_timeline_buckets_by_hour_with_percentiles(log):
    buckets = stats.timeline(NOW - timedelta(hours=24), NOW)
    assert len(buckets) in (24, 25)
    assert sum(sum(b.by_status.values()) for b in buckets) == 17
    assert sum(b.by_status.get("completed", 0) for b in buckets) == 10
    assert all(b.start <= b2.start for b, b2 in itertools.pairwise(buckets))
    all_ttfts = [v for b in buckets for v in b.ttft.values() if v is not None]
    assert max(all_ttfts) == 1000


def test_timeline_buckets_by_day_for_long_windows(log):
    buckets = stats.timeline(NOW - timedelta(days=30), NOW)
    assert 30 <= len(buckets) <= 31
    assert sum(sum(b.by_status.values()) for b in buckets) == 18
