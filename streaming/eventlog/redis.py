"""The event log on Redis Streams, so that any worker can serve any session's events.

The worker that generates an answer keeps its log in memory (its own readers read that) and
mirrors it to a Redis stream, ``evi360:events:<session>``: one ``XADD`` per event, with the SSE
sequence number as the entry id (event ``n`` is ``<n+1>-0``), written in batches from one task
per run, so the generation never waits on Redis. A reader on another worker ``XREAD BLOCK``s from
the id after the last event it has. A final ``end`` entry tells readers the log is complete.
Streams are capped (``MAXLEN``) and expire ``EVI360_EVENT_RETENTION`` after their last write.

Across workers also: ``evi360:live:<session>`` exists while the generation runs (refreshed by the
mirror; sessions still ``streaming`` without it are a dead worker's, marked ``interrupted`` by any
other worker), readers on other workers register in ``evi360:readers:<session>`` (so the generating
worker does not cancel for lack of readers), and ``DELETE`` on any worker publishes the session on
``evi360:cancel``, which every worker listens to.

Redis failing mid-stream: the mirror retries and, once Redis answers again, rewrites what the
stream lacks (a restarted Redis has lost it), with the same ids, so a reader resumes without a gap
or a duplicate. A reader that cannot reach Redis, or whose stream stops growing while nobody
generates it any more, ends with a retryable ``error`` event instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import timedelta

import redis.asyncio as aioredis
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from streaming.engine.events import STREAM_UNAVAILABLE
from streaming.engine.wire import encode
from streaming.eventlog.memory import KEEP_ALIVE, RUNS, StreamRun

logger = logging.getLogger(__name__)

# Far above any answer (a 10,000-token answer is ~10,000 events): a bound, never a trim.
MAX_EVENTS = 100_000
BOUND = {"maxlen": MAX_EVENTS, "approximate": True}
READER_TTL = 60.0  # a remote reader re-registers at least every keep-alive interval
CANCEL_CHANNEL = "evi360:cancel"
# How long a reader keeps trying to reach Redis before it gives up with an error event.
READER_PATIENCE = 10.0
WORKER = f"{socket.gethostname()}:{os.getpid()}"

LOST = STREAM_UNAVAILABLE.event()


def events_key(session_id: str) -> str:
    return f"evi360:events:{session_id}"


def live_ttl() -> float:
    """How long a generating worker's live key lasts unless refreshed (every third of it)."""
    return 2 * settings.EVI360_ORPHAN_CHECK_INTERVAL


def live_key(session_id: str) -> str:
    return f"evi360:live:{session_id}"


def readers_key(session_id: str) -> str:
    return f"evi360:readers:{session_id}"


def entry_id(seq: int) -> str:
    return f"{seq + 1}-0"


# One client per event loop (a process has one; the tests have one per test).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()
_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)
_subscribed: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = weakref.WeakKeyDictionary()
_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


def client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    found = _clients.get(loop)
    if found is None:
        found = _clients[loop] = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10
        )
    return found


# --- The generating worker -------------------------------------------------------------------


async def _stored(redis: aioredis.Redis, key: str) -> tuple[int, bool]:
    """How many events the stream holds, and whether its end is written."""
    last = await redis.xrevrange(key, count=1)
    if not last:
        return 0, False
    entry, fields = last[0]
    count = int(entry.split(b"-")[0])
    return (count - 1, True) if b"end" in fields else (count, False)


async def mirror(run: StreamRun, retention: float) -> None:
    """Copy the run's log to Redis as it grows, until it is closed and its end is written."""
    redis = client()
    key, live = events_key(run.session_id), live_key(run.session_id)
    events = run.log.events  # the list itself: compact() replaces the log's, not this one
    subscribed = _subscribed.get(asyncio.get_running_loop())
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
                written, ended = await _stored(redis, key)
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


async def remote_readers(session_id: str) -> int:
    """Readers of this session on other workers (registered within READER_TTL)."""
    try:
        return await client().zcount(readers_key(session_id), time.time(), "+inf")
    except RedisError:
        return 0  # unknown: the grace decides


async def request_cancel(session_id: str) -> bool:
    """Ask whichever worker generates ``session_id`` to stop it. False if nobody generates it."""
    redis = client()
    if not await redis.exists(live_key(session_id)):
        return False
    await redis.publish(CANCEL_CHANNEL, session_id)
    return True


async def _listen(subscribed: asyncio.Event) -> None:
    backoff = 0.1
    while True:
        try:
            async with client().pubsub() as pubsub:
                await pubsub.subscribe(CANCEL_CHANNEL)
                subscribed.set()
                backoff = 0.1
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    run = RUNS.get(message["data"].decode())
                    if run is not None and run.task is not None and not run.task.done():
                        run.task.cancel()
        except RedisError as exc:
            logger.warning("cancel channel: Redis unavailable (%s); resubscribing", exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


async def _sweep(interval: float) -> None:
    """Mark ``interrupted`` the sessions no worker generates any more: still ``streaming`` in the
    database, but nobody keeps their live key, at two looks in a row (a Redis restart loses the
    keys of running streams too, until their workers write them again)."""
    from evi360.db import run_db
    from streaming.store import reads as selectors
    from streaming.store import writes as services

    suspects: set[str] = set()
    while True:
        await asyncio.sleep(interval)
        try:
            ids = await run_db(selectors.streaming_session_ids, timedelta(seconds=interval))
            ids = [i for i in ids if i not in RUNS]
            alive = []
            if ids:
                async with client().pipeline(transaction=False) as pipe:
                    for session_id in ids:
                        pipe.exists(live_key(session_id))
                    alive = await pipe.execute()
            orphans = {i for i, exists in zip(ids, alive, strict=True) if not exists}
            confirmed, suspects = orphans & suspects, orphans - suspects
            if confirmed and (count := await run_db(services.mark_orphaned, confirmed)):
                logger.warning("%d stream session(s) of a dead worker marked interrupted", count)
        except (RedisError, DatabaseError) as exc:
            logger.warning("looking for interrupted streams failed: %s", exc)
            suspects = set()


def ensure_listener() -> None:
    """Listen for cancellations from other workers, and look for dead workers' sessions (once
    per process)."""
    loop = asyncio.get_running_loop()
    task = _listeners.get(loop)
    if task is None or task.done():
        _subscribed[loop] = asyncio.Event()
        _listeners[loop] = loop.create_task(_listen(_subscribed[loop]), name="evi360-cancel-listener")
    sweeper = _sweepers.get(loop)
    if sweeper is None or sweeper.done():
        _sweepers[loop] = loop.create_task(
            _sweep(settings.EVI360_ORPHAN_CHECK_INTERVAL), name="evi360-orphan-sweeper"
        )


def attach(run: StreamRun) -> None:
    """Make a run that was just started readable from every worker."""
    ensure_listener()
    run.mirror = asyncio.get_running_loop().create_task(
        mirror(run, settings.EVI360_EVENT_RETENTION), name=f"mirror-{run.session_id}"
    )
    run.remote_readers = lambda: remote_readers(run.session_id)


# --- A reader on any worker ------------------------------------------------------------------


async def has_events(session_id: str) -> bool:
    try:
        return bool(await client().exists(events_key(session_id)))
    except RedisError:
        return False


async def ended_before(session_id: str, start: int) -> bool:
    """Whether the stream has ended with fewer than ``start`` + 1 events: nothing is left to
    read from ``start`` on. False when Redis cannot say (a reader then finds out)."""
    try:
        written, ended = await _stored(client(), events_key(session_id))
    except RedisError:
        return False
    return ended and start >= written


async def read(session_id: str, start: int = 0, *, keep_alive: float) -> AsyncIterator[bytes]:
    """The session's events from sequence number ``start`` on, as they are written, until the end
    entry. Several ready events go out in one chunk; ``KEEP_ALIVE`` when none came for
    ``keep_alive`` seconds."""
    redis = client()
    key, readers = events_key(session_id), readers_key(session_id)
    reader = uuid.uuid4().hex
    last = f"{start}-0"  # exclusive: the first entry returned is event `start`
    block_ms = max(1, int(keep_alive * 1000))
    unreachable_since: float | None = None
    registered = 0.0
    idle_checks = 0
    try:
        if start and await ended_before(session_id, start):
            return  # past the end of a finished stream (XREAD would wait for more)
        while True:
            try:
                if time.monotonic() - registered > min(keep_alive, READER_TTL / 4):
                    # Tell the generating worker someone reads (its resume grace counts us).
                    await redis.zadd(readers, {reader: time.time() + READER_TTL})
                    await redis.expire(readers, int(READER_TTL * 2))
                    registered = time.monotonic()
                found = await redis.xread({key: last}, count=1000, block=block_ms)
                unreachable_since = None
            except RedisError:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since > READER_PATIENCE:
                    yield encode_lost()
                    return
                await asyncio.sleep(0.2)
                continue
            if not found:
                # Nothing new for a while: is anybody still writing this stream?
                idle_checks += 1
                if idle_checks >= 2 and not await _still_written(redis, session_id):
                    yield encode_lost()
                    return
                yield KEEP_ALIVE
                continue
            idle_checks = 0
            chunks = []
            ended = False
            for entry, fields in found[0][1]:
                if b"end" in fields:
                    ended = True
                    break
                chunks.append(fields[b"d"])
                last = entry.decode() if isinstance(entry, bytes) else entry
            if chunks:
                yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if ended:
                return
    finally:
        with contextlib.suppress(RedisError, RuntimeError):
            await asyncio.shield(redis.zrem(readers, reader))


async def _still_written(redis: aioredis.Redis, session_id: str) -> bool:
    try:
        return bool(await redis.exists(live_key(session_id)))
    except RedisError:
        return True  # unknown: the unreachable path decides


def encode_lost() -> bytes:
    # No `id:` line: the client's Last-Event-ID stays at the last event it really has.
    return encode(-1, LOST).split(b"\n", 1)[1]
