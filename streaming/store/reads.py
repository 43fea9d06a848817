"""Reads of the stream log: for the streaming path (history, replays), the dashboard and
``stream_report``.

Everything is computed in the database with queries that run on SQLite and PostgreSQL alike:
counts with conditional aggregation, and percentiles by nearest rank with ``ROW_NUMBER()`` window
functions (SQLite has no ``percentile_cont``). Nearest rank: the p-th percentile of n values is the
value at rank ceil(p·n/100), so every figure is one of the recorded values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from streaming.models import Status, StreamReplay, StreamSession
from streaming.store import replay


def streaming_session_ids(older_than: timedelta) -> list[str]:
    """Sessions still ``streaming`` that started more than ``older_than`` ago."""
    cutoff = timezone.now() - older_than
    ids = StreamSession.objects.filter(status=Status.STREAMING, created_at__lt=cutoff).values_list(
        "id", flat=True
    )
    return [str(i) for i in ids]


def replayed_events(session_id: object, start: int) -> bytes | None:
    """A finished session's SSE events from index ``start`` on, while they are kept (None: they
    are not, or no longer)."""
    packed = (
        StreamReplay.objects.filter(session_id=session_id, kept_until__gt=timezone.now())
        .values_list("events", flat=True)
        .first()
    )
    return None if packed is None else replay.unpack(bytes(packed), start)


def conversation_history(conversation_id: object, limit: int) -> list[tuple[str, str]]:
    """The newest ``limit`` completed turns of a conversation, oldest first, as (question,
    answer). Cancelled, failed and running turns are shown to the user but never replayed."""
    if not limit or conversation_id is None:
        return []
    turns = (
        StreamSession.objects.filter(conversation_id=conversation_id, status=Status.COMPLETED)
        .order_by("-created_at")
        .values_list("query", "answer")[:limit]
    )
    return list(reversed(turns))


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

    def rate(self, status: str) -> float | None:
        """Share of the window's finished and running streams with this status (0..1)."""
        return self.by_status.get(status, 0) / self.total if self.total else None

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
        }


def _percentiles(column: str, since: datetime, until: datetime) -> dict[int, int | None]:
    # `column` is one of our own column names, never user input.
    picks = ", ".join(f"MAX(CASE WHEN rn = ({p} * n + 99) / 100 THEN v END)" for p in PERCENTILES)
    sql = f"""
        WITH ranked AS (
            SELECT {column} AS v,
                   ROW_NUMBER() OVER (ORDER BY {column}) AS rn,
                   COUNT(*) OVER () AS n
            FROM streaming_streamsession
            WHERE created_at >= %s AND created_at < %s AND {column} IS NOT NULL
        )
        SELECT {picks} FROM ranked
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [since, until])
        row = cursor.fetchone()
    return dict(zip(PERCENTILES, row, strict=True))


def summary(since: datetime, until: datetime | None = None) -> Summary:
    until = until or timezone.now()
    result = Summary(since=since, until=until)
    window = StreamSession.objects.filter(created_at__gte=since, created_at__lt=until)
    timeout_ms = settings.EVI360_STREAM_TIMEOUT * 1000
    counts = window.aggregate(
        total=Count("id"),
        over_timeout=Count("id", filter=Q(status=Status.TIMEOUT) | Q(duration_ms__gt=timeout_ms)),
        **{status.value: Count("id", filter=Q(status=status)) for status in Status},
    )
    result.total = counts.pop("total")
    result.over_timeout = counts.pop("over_timeout")
    result.by_status = counts
    result.ttft = _percentiles("ttft_ms", since, until)
    result.duration = _percentiles("duration_ms", since, until)
    stale = timedelta(seconds=settings.EVI360_STREAM_TIMEOUT + settings.EVI360_INTERRUPTED_MARGIN)
    result.active = StreamSession.objects.filter(
        status=Status.STREAMING, created_at__gte=timezone.now() - stale
    ).count()
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


def _bucket_sql(unit: str) -> str:
    """A text key for the hour or day (UTC) a session started in, on either database."""
    if connection.vendor == "postgresql":
        fmt = "YYYY-MM-DD HH24" if unit == "hour" else "YYYY-MM-DD"
        return f"to_char(created_at AT TIME ZONE 'UTC', '{fmt}')"
    # %% because the query goes through the driver's %s parameter formatting.
    fmt = "%%Y-%%m-%%d %%H" if unit == "hour" else "%%Y-%%m-%%d"
    return f"strftime('{fmt}', created_at)"


def bucket_unit(since: datetime, until: datetime) -> str:
    return "hour" if until - since <= timedelta(hours=48) else "day"


def timeline(since: datetime, until: datetime | None = None) -> list[Bucket]:
    """Streams per hour (windows up to 48 h) or per day, by status, with TTFT percentiles."""
    until = until or timezone.now()
    unit = bucket_unit(since, until)
    key = _bucket_sql(unit)
    buckets: dict[str, Bucket] = {}
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        start = start.replace(hour=0)
    while start < until:
        label = start.strftime("%Y-%m-%d %H" if unit == "hour" else "%Y-%m-%d")
        buckets[label] = Bucket(start)
        start += step

    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {key} AS bucket, status, COUNT(*) FROM streaming_streamsession
                WHERE created_at >= %s AND created_at < %s GROUP BY 1, 2""",
            [since, until],
        )
        for label, status, count in cursor.fetchall():
            if label in buckets:
                buckets[label].by_status[status] = count
        picks = ", ".join(f"MAX(CASE WHEN rn = ({p} * n + 99) / 100 THEN v END)" for p in PERCENTILES)
        cursor.execute(
            f"""WITH ranked AS (
                    SELECT {key} AS bucket, ttft_ms AS v,
                           ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY ttft_ms) AS rn,
                           COUNT(*) OVER (PARTITION BY {key}) AS n
                    FROM streaming_streamsession
                    WHERE created_at >= %s AND created_at < %s AND ttft_ms IS NOT NULL
                )
                SELECT bucket, {picks} FROM ranked GROUP BY bucket""",
            [since, until],
        )
        for label, *values in cursor.fetchall():
            if label in buckets:
                buckets[label].ttft = dict(zip(PERCENTILES, values, strict=True))
    return list(buckets.values())
