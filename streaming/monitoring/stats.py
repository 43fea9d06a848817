"""The dashboard's and ``stream_report``'s figures, computed in the database on SQLite and
PostgreSQL alike: counts with conditional aggregation, and percentiles by nearest rank (the p-th
percentile of n values is the value at rank ceil(p·n/100), so every figure is a recorded value;
SQLite has no ``percentile_cont``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from streaming.models import AnswerFeedback, Rating, Status, StreamSession, stale_cutoff
from streaming.store import fast_sql

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
PERCENTILES = (50, 95, 99)


@dataclass
class Summary:
    since: datetime
    until: datetime
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    ttft: dict[int, int | None] = field(default_factory=dict)  # percentile -> ms
    duration: dict[int, int | None] = field(default_factory=dict)
    active: int = 0
    over_timeout: int = 0
    errors: list[tuple[str, int]] = field(default_factory=list)  # (error code, count), most first
    feedback: dict[str, int] = field(default_factory=dict)  # rating -> answers rated so

    def rate(self, status: str) -> float | None:
        """Share of the window's finished and running streams with this status (0..1)."""
        return self.by_status.get(status, 0) / self.total if self.total else None

    def down_rate(self) -> float | None:
        return down_rate(self.feedback)

    def as_dict(self) -> dict:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "streams": self.total,
            "by_status": self.by_status,
            "rates": {s: self.rate(s) for s in ("completed", "error", "cancelled", "timeout")},
            "ttft_ms": {f"p{p}": v for p, v in self.ttft.items()},
            "duration_ms": {f"p{p}": v for p, v in self.duration.items()},
            "active_streams": self.active,
            "over_timeout": self.over_timeout,
            "top_errors": [{"code": c, "count": n} for c, n in self.errors],
            "feedback": {**self.feedback, "down_rate": self.down_rate()},
        }


def down_rate(feedback: dict[str, int]) -> float | None:
    """Share of the rated answers rated 👎 (0..1); None when none was rated."""
    rated = sum(feedback.values())
    return feedback.get(Rating.DOWN, 0) / rated if rated else None


def _percentiles(field_name: str, since: datetime, until: datetime) -> dict[int, int | None]:
    return fast_sql.percentiles(field_name, since, until, PERCENTILES)


def summary(since: datetime, until: datetime | None = None) -> Summary:
    until = until or timezone.now()
    result = Summary(since=since, until=until)
    window = StreamSession.objects.filter(created_at__gte=since, created_at__lt=until)
    timeout_ms = settings.EVI360_STREAM_TIMEOUT * 1000
    counts = window.aggregate(
        total=Count("id"),
        over_timeout=Count("id", filter=Q(status=Status.TIMEOUT) | Q(duration_ms__gt=timeout_ms)),
        **{status.value: Count("id", filter=Q(status=status)) for status in Status},
        # In the same query: the join is on a unique key, so it adds no rows to count.
        **{f"rated_{r.value}": Count("feedback", filter=Q(feedback__rating=r)) for r in Rating},
    )
    result.total = counts.pop("total")
    result.over_timeout = counts.pop("over_timeout")
    result.feedback = {r.value: counts.pop(f"rated_{r.value}") for r in Rating}
    result.by_status = counts
    result.ttft = _percentiles("ttft_ms", since, until)
    result.duration = _percentiles("duration_ms", since, until)
    result.active = StreamSession.objects.active().filter(created_at__gte=stale_cutoff()).count()
    result.errors = list(
        window.exclude(error_code="")
        .exclude(status=Status.CANCELLED)
        .values_list("error_code")
        .annotate(n=Count("id"))
        .order_by("-n", "error_code")[:10]
    )
    return result


@dataclass
class Bucket:
    start: datetime
    by_status: dict[str, int] = field(default_factory=dict)
    ttft: dict[int, int | None] = field(default_factory=dict)
    feedback: dict[str, int] = field(default_factory=dict)  # rating -> answers rated so

    def down_rate(self) -> float | None:
        return down_rate(self.feedback)


def bucket_unit(since: datetime, until: datetime) -> str:
    return "hour" if until - since <= timedelta(hours=48) else "day"


def timeline(since: datetime, until: datetime | None = None) -> list[Bucket]:
    """Streams per hour (windows up to 48 h) or per day, by status, with TTFT percentiles and
    the feedback on their answers."""
    until = until or timezone.now()
    unit = bucket_unit(since, until)
    buckets: dict[str, Bucket] = {}
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        start = start.replace(hour=0)
    while start < until:
        label = start.strftime("%Y-%m-%d %H" if unit == "hour" else "%Y-%m-%d")
        buckets[label] = Bucket(start)
        start += step
    for label, status, count in fast_sql.counts_by_bucket(unit, since, until):
        if label in buckets:
            buckets[label].by_status[status] = count
    for label, rating, count in fast_sql.feedback_by_bucket(unit, since, until):
        if label in buckets:
            buckets[label].feedback[rating] = count
    for label, values in fast_sql.percentiles_by_bucket("ttft_ms", unit, since, until, PERCENTILES).items():
        if label in buckets:
            buckets[label].ttft = values
    return list(buckets.values())


def latest_down(since: datetime, until: datetime, limit: int = 10) -> list[AnswerFeedback]:
    """The newest 👎 given in the window, with their sessions. By the time given, not the answer's
    (unlike the counts): it reads the feedback's own index newest first and stops at ``limit``."""
    return list(
        AnswerFeedback.objects.filter(rating=Rating.DOWN, created_at__gte=since, created_at__lt=until)
        .select_related("session")
        .order_by("-created_at", "-pk")[:limit]
    )
