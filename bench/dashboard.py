"""Dashboard queries over 100,000 stream sessions.

    .venv/bin/python bench/dashboard.py                  # SQLite (a fresh file under var/)
    .venv/bin/python bench/dashboard.py --postgres URL   # PostgreSQL (its tables are replaced)

Generates sessions spread over 30 days with a realistic mix of outcomes (5 % of the answers
rated, a quarter of those 👎), then times the
dashboard's queries (summary + timeline) for each window. Target: the 7-day view under 300 ms on
PostgreSQL. A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.retrieval import database_url, setup  # noqa: E402


def build(count: int, seed: int = 11) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from streaming.models import AnswerFeedback, StreamSession

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
    batch: list[StreamSession] = []

    def flush() -> None:
        StreamSession.objects.bulk_create(batch)
        rated = [s for s in batch if s.status == "completed" and rng.random() < 0.05]
        AnswerFeedback.objects.bulk_create(
            AnswerFeedback(session=s, rating="down" if rng.random() < 0.25 else "up") for s in rated
        )
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

    from streaming.monitoring import stats

    started = time.perf_counter()
    build(args.sessions)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE streaming_streamsession")
            cursor.execute("ANALYZE streaming_answerfeedback")
    print(
        f"dashboard on {connection.vendor}: {args.sessions} sessions over 30 days (built in {time.perf_counter() - started:.1f} s)"
    )
    for window, delta in stats.WINDOWS.items():
        timings = []
        for _ in range(args.rounds):
            until = timezone.now()
            t = time.perf_counter()
            stats.summary(until - delta, until)
            stats.timeline(until - delta, until)
            timings.append((time.perf_counter() - t) * 1000)
        print(f"  {window:>3}: median {statistics.median(timings):.0f} ms, max {max(timings):.0f} ms")


if __name__ == "__main__":
    main()
