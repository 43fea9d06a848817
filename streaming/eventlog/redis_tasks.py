"""The Redis event log's background tasks: one per run copying its log to Redis (``mirror``),
and two per process, hearing cancellations (``listen``) and marking dead workers' sessions
interrupted (``sweep``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

import redis.asyncio as aioredis
from django.db import DatabaseError
from redis.exceptions import RedisError

from streaming.engine.events import STOP_REQUESTED
from streaming.eventlog.redis_keys import (
    BOUND,
    CANCEL_CHANNEL,
    WORKER,
    entry_id,
    events_key,
    live_key,
    live_ttl,
    stored,
)
from streaming.eventlog.run import RUNS, StreamRun

logger = logging.getLogger("streaming.eventlog.redis")


async def mirror(
    redis: aioredis.Redis, run: StreamRun, retention: float, subscribed: asyncio.Event | None
) -> None:
    """Copy the run's log to Redis as it grows, until it is closed and its end is written.
    ``subscribed``: set once this process hears cancellations."""
    key, live = events_key(run.session_id), live_key(run.session_id)
    events = run.log.events  # the list itself: compact() replaces the log's, not this one
    if subscribed is not None:
        # Announce the run (live key) only once this process hears cancellations: a DELETE on
        # another worker must not be lost (the first stream of a process only).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed.wait(), 2)
    written = 0
    failures = 0
    refreshed = 0.0
    expire = max(1, int(retention))
    ttl = live_ttl()
    while True:
        try:
            if failures:
                # Redis came back, maybe empty (restarted): carry on from what it holds.
                written, ended = await stored(redis, key)
                if ended:
                    return
            now = time.monotonic()
            pending = len(events)
            closed = run.log.closed
            # The live key and the expiry are renewed every third of the key's lifetime (and
            # after a failure), not with every event: a token costs one XADD.
            renew = bool(failures) or now - refreshed > ttl / 3
            if written < pending or closed or renew:
                async with redis.pipeline(transaction=False) as pipe:
                    for seq in range(written, pending):
                        pipe.xadd(key, {"d": events[seq]}, id=entry_id(seq), **BOUND)
                    if closed:
                        pipe.xadd(key, {"end": "1"}, id=entry_id(pending), **BOUND)
                        pipe.delete(live)
                        pipe.expire(key, expire)
                    elif renew:
                        pipe.set(live, WORKER, px=int(ttl * 1000))
                        pipe.expire(key, expire)
                    await pipe.execute()
                written, failures = pending, 0
                if renew:
                    refreshed = now
                if closed:
                    return
            await run.log.wait(written, at_most=ttl / 3)
        except RedisError as exc:
            failures += 1
            if failures == 1 or failures % 20 == 0:
                logger.warning("event log %s: Redis unavailable (%s); retrying", run.session_id, exc)
            if run.log.closed and failures > 60:
                logger.error("event log %s: gave up writing to Redis", run.session_id)
                return
            await asyncio.sleep(min(0.05 * 2**failures, 1.0))


async def listen(redis: aioredis.Redis, subscribed: asyncio.Event) -> None:
    """Cancel the runs of this process that a DELETE on any worker stops."""
    backoff = 0.1
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(CANCEL_CHANNEL)
                subscribed.set()
                backoff = 0.1
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    run = RUNS.get(message["data"].decode())
                    if run is not None and run.task is not None and not run.task.done():
                        run.task.cancel(STOP_REQUESTED)
        except RedisError as exc:
            logger.warning("cancel channel: Redis unavailable (%s); resubscribing", exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


async def sweep(redis: aioredis.Redis, interval: float) -> None:
    """Mark ``interrupted`` the sessions no worker generates any more: still ``streaming`` in the
    database, but nobody keeps their live key, at two looks in a row (a Redis restart loses the
    keys of running streams too, until their workers write them again)."""
    from evi360.db import run_db
    from streaming.store import reads, writes

    suspects: set[str] = set()
    while True:
        await asyncio.sleep(interval)
        try:
            ids = await run_db(reads.streaming_session_ids, timedelta(seconds=interval))
            ids = [i for i in ids if i not in RUNS]
            alive = []
            if ids:
                async with redis.pipeline(transaction=False) as pipe:
                    for session_id in ids:
                        pipe.exists(live_key(session_id))
                    alive = await pipe.execute()
            orphans = {i for i, exists in zip(ids, alive, strict=True) if not exists}
            confirmed, suspects = orphans & suspects, orphans - suspects
            if confirmed and (count := await run_db(writes.mark_orphaned, confirmed)):
                logger.warning("%d stream session(s) of a dead worker marked interrupted", count)
        except (RedisError, DatabaseError) as exc:
            logger.warning("looking for interrupted streams failed: %s", exc)
            suspects = set()
