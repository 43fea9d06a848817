"""Dashboard queries over 100,000 stream sessions.

    .venv/bin/python bench/dashboard.py                  # SQLite (a fresh file under var/)
    .venv/bin/python bench/dashboard.py --postgres URL   # PostgreSQL (its tables are replaced)

Generates sessions spread over 30 days with a realistic mix of outcomes (5 % of the answers
rated, a quarter of those 👎 with reasons, given a few minutes after the answer), then times the
dashboard's queries (summary + timeline) for each window, and apart the feedback's own: the
ratings per bucket (part of the timeline) and the latest 👎 list. Target: the 7-day view under
300 ms on PostgreSQL. A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.retrieval import database_url, setup  # noqa: E402


def build(count: int, seed: int = 11) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from streaming.models import AnswerFeedback, Reason, StreamSession

    StreamSession.objects.all().delete()
    users = [get_user_model().objects.get_or_create(username=f"bench{i}")[0] for i in range(50)]
    rng = random.Random(seed)
    now = timezone.now()
    outcomes = ["completed"] * 90 + ["error"] * 4 + ["cancelled"] * 4 + ["timeout"] + ["interrupted"]
    codes = {
        "error": ["upstream_unavailable", "upstream_error", "internal"],
        "timeout": ["timeout"],
        "cancelled": ["cancelled"],
        "interrupted": ["interrupted"],
        "completed": [""],
    }
    reasons = list(Reason.values)
    batch: list[StreamSession] = []

    def flush() -> None:
        StreamSession.objects.bulk_create(batch)
        rated = [s for s in batch if s.status == "completed" and rng.random() < 0.05]
        given = [
            AnswerFeedback(
                session=s, rating="down", reasons=rng.sample(reasons, rng.randint(1, 2)), comment="c"
            )
            if rng.random() < 0.25
            else AnswerFeedback(session=s, rating="up")
            for s in rated
        ]
        AnswerFeedback.objects.bulk_create(given)
        # created_at is auto_now_add (bulk_create sets it to now); bulk_update writes the time
        # the feedback would have been given, so the latest-👎 list reads a spread-out index.
        for feedback in given:
            feedback.created_at = min(
                now, feedback.session.created_at + timedelta(seconds=rng.uniform(30, 1800))
            )
        AnswerFeedback.objects.bulk_update(given, ["created_at"], batch_size=1000)
        batch.clear()

    with transaction.atomic():
        for _ in range(count):
            status = rng.choice(outcomes)
            created = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
            ttft = None if status == "interrupted" else int(rng.lognormvariate(5.5, 0.5))
            duration = 60_000 if status == "timeout" else int(rng.lognormvariate(8.5, 0.6))
            batch.append(
                StreamSession(
                    user=rng.choice(users),
                    query="q",
                    language=rng.choice(["nl", "nl", "nl", "nl", "en"]),
                    model_name="anthropic:claude-sonnet-4-6",
                    client_kind="web",
                    status=status,
                    error_code=rng.choice(codes[status]),
                    created_at=created,
                    ttft_ms=ttft,
                    duration_ms=duration,
                )
            )
            if len(batch) == 5000:
                flush()
        flush()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    setup(database_url(args.postgres, "dashboard"))
    from django.db import connection
    from django.utils import timezone

    from streaming.models import AnswerFeedback
    from streaming.monitoring import stats
    from streaming.store import fast_sql

    started = time.perf_counter()
    build(args.sessions)
    if connection.vendor == "postgresql":
        # VACUUM FULL: the last run's rows, deleted by build(), stay in the file (500,000 dead
        # tuples after five runs, the table 3x its size) and slowed every later run's scans.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM FULL ANALYZE streaming_streamsession")
            cursor.execute("VACUUM FULL ANALYZE streaming_answerfeedback")
    print(
        f"dashboard on {connection.vendor}: {args.sessions} sessions over 30 days (built in {time.perf_counter() - started:.1f} s)"
    )
    print(
        f"  feedback: {AnswerFeedback.objects.count()} rated, {AnswerFeedback.objects.filter(rating='down').count()} 👎"
    )
    for window, delta in stats.WINDOWS.items():
        timings: dict[str, list[float]] = {
            "summary + timeline": [],
            "feedback by bucket": [],
            "latest 👎": [],
        }
        unit = stats.bucket_unit(timezone.now() - delta, timezone.now())
        for _ in range(args.rounds):
            until = timezone.now()
            timings["summary + timeline"].append(
                timed(stats.summary, until - delta, until) + timed(stats.timeline, until - delta, until)
            )
            timings["feedback by bucket"].append(
                timed(fast_sql.feedback_by_bucket, unit, until - delta, until)
            )
            timings["latest 👎"].append(timed(stats.latest_down, until - delta, until))
        print(
            f"  {window:>3}: "
            + "; ".join(
                f"{name} median {statistics.median(t):.1f} ms, max {max(t):.1f} ms"
                for name, t in timings.items()
            )
        )


def timed(function: Callable[..., object], *args: object) -> float:
    """Milliseconds one call took (a list is read whole, as the dashboard does)."""
    started = time.perf_counter()
    function(*args)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
