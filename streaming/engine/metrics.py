"""Prometheus metrics of the streaming path, served at /metrics.

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by
them (prometheus-client's multiprocess mode): every process writes its samples there and
/metrics adds them up. Without it, the metrics are those of the one process.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from django.conf import settings
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:
    import redis

_MS_BUCKETS = (25, 50, 100, 200, 300, 500, 750, 1000, 2000, 5000, 10000)
_DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120)

TTFT = Histogram("evi360_stream_ttft_milliseconds", "Time from request to first token", buckets=_MS_BUCKETS)
DURATION = Histogram("evi360_stream_duration_seconds", "Duration of a stream", buckets=_DURATION_BUCKETS)
OUTCOMES = Counter("evi360_streams_total", "Streams by outcome", ["status"])
ERRORS = Counter("evi360_stream_errors_total", "Streams that ended in an error, by code", ["code"])
TOKENS = Counter("evi360_stream_tokens_total", "Token events streamed")
ACTIVE = Gauge("evi360_streams_active", "Streams running now", multiprocess_mode="livesum")
# Counted when a rating is given or changed (not when a comment alone changes); a counter only
# rises, so a withdrawn feedback stays counted: the dashboard has the current figures.
FEEDBACK = Counter("evi360_answer_feedback_total", "Ratings given to answers (up or down)", ["rating"])


def record_start() -> None:
    ACTIVE.inc()


def record_end(
    status: str, error_code: str, ttft_ms: int | None, duration_ms: int, token_events: int
) -> None:
    ACTIVE.dec()
    OUTCOMES.labels(status=status).inc()
    if error_code and status != "cancelled":
        ERRORS.labels(code=error_code).inc()
    if ttft_ms is not None:
        TTFT.observe(ttft_ms)
    DURATION.observe(duration_ms / 1000)
    TOKENS.inc(token_events)


def record_feedback(rating: str) -> None:
    FEEDBACK.labels(rating=rating).inc()


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(DEFAULT_REGISTRY)
    return text + _cluster_active()


@functools.cache
def _redis(url: str) -> redis.Redis:
    # Imported here: redis-py's memory is only paid by a deployment with the Redis event log.
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)


def _cluster_active() -> bytes:
    """Streams running on every worker of every host: the live keys of the Redis event log
    (a dead worker's expire), so one scrape shows the whole deployment."""
    if settings.EVI360_EVENT_LOG != "redis":
        return b""
    from redis import RedisError

    try:
        count = sum(1 for _ in _redis(settings.REDIS_URL).scan_iter(match="evi360:live:*", count=1000))
    except RedisError:
        return b""
    return (
        b"# HELP evi360_streams_active_cluster Streams running now on all workers (Redis event log)\n"
        b"# TYPE evi360_streams_active_cluster gauge\n"
        b"evi360_streams_active_cluster " + str(count).encode() + b"\n"
    )
