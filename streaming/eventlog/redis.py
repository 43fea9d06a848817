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
import time
import uuid
import weakref
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

from streaming.engine.events import STREAM_UNAVAILABLE
from streaming.engine.wire import KEEP_ALIVE, encode
from streaming.eventlog.redis_keys import (
    CANCEL_CHANNEL,
    READER_TTL,
    events_key,
    live_key,
    readers_key,
    stored,
)
from streaming.eventlog.redis_tasks import listen, mirror, sweep
from streaming.eventlog.run import StreamRun

# How long a reader keeps trying to reach Redis before it gives up with an error event.
READER_PATIENCE = 10.0

LOST = STREAM_UNAVAILABLE.event()


_Loop = asyncio.AbstractEventLoop


class RedisEventLog:
    """The shared event log on Redis Streams (``streaming.eventlog.base.SharedEventLog``); one
    per process (``streaming.eventlog.shared()``)."""

    def __init__(self) -> None:
        # Per event loop: a process has one; the tests have one per test.
        self._clients: weakref.WeakKeyDictionary[_Loop, aioredis.Redis] = weakref.WeakKeyDictionary()
        self._listeners: weakref.WeakKeyDictionary[_Loop, asyncio.Task[None]] = weakref.WeakKeyDictionary()
        self._subscribed: weakref.WeakKeyDictionary[_Loop, asyncio.Event] = weakref.WeakKeyDictionary()
        self._sweepers: weakref.WeakKeyDictionary[_Loop, asyncio.Task[None]] = weakref.WeakKeyDictionary()

    def client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is None:
            found = self._clients[loop] = aioredis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10
            )
        return found

    # --- The generating worker ---------------------------------------------------------------

    def ensure_started(self) -> None:
        """Listen for cancellations from other workers, and look for dead workers' sessions (once
        per process)."""
        loop = asyncio.get_running_loop()
        task = self._listeners.get(loop)
        if task is None or task.done():
            subscribed = self._subscribed[loop] = asyncio.Event()
            self._listeners[loop] = loop.create_task(
                listen(self.client(), subscribed), name="evi360-cancel-listener"
            )
        sweeper = self._sweepers.get(loop)
        if sweeper is None or sweeper.done():
            self._sweepers[loop] = loop.create_task(
                sweep(self.client(), settings.EVI360_ORPHAN_CHECK_INTERVAL), name="evi360-orphan-sweeper"
            )

    def attach(self, run: StreamRun) -> None:
        """Make a run that was just started readable from every worker."""
        self.ensure_started()
        loop = asyncio.get_running_loop()
        run.mirror = loop.create_task(
            mirror(self.client(), run, settings.EVI360_EVENT_RETENTION, self._subscribed.get(loop)),
            name=f"mirror-{run.session_id}",
        )
        run.remote_readers = lambda: self.remote_readers(run.session_id)

    async def remote_readers(self, session_id: str) -> int:
        """Readers of this session on other workers (registered within READER_TTL)."""
        try:
            return await self.client().zcount(readers_key(session_id), time.time(), "+inf")
        except RedisError:
            return 0  # unknown: the grace decides

    async def request_cancel(self, session_id: str) -> bool:
        """Ask whichever worker generates ``session_id`` to stop it. False if nobody generates it."""
        redis = self.client()
        if not await redis.exists(live_key(session_id)):
            return False
        await redis.publish(CANCEL_CHANNEL, session_id)
        return True

    # --- A reader on any worker --------------------------------------------------------------

    async def has_events(self, session_id: str) -> bool:
        try:
            return bool(await self.client().exists(events_key(session_id)))
        except RedisError:
            return False

    async def ended_before(self, session_id: str, start: int) -> bool:
        """Whether the stream has ended with fewer than ``start`` + 1 events: nothing is left to
        read from ``start`` on. False when Redis cannot say (a reader then finds out)."""
        try:
            written, ended = await stored(self.client(), events_key(session_id))
        except RedisError:
            return False
        return ended and start >= written

    async def read(self, session_id: str, start: int = 0, *, keep_alive: float) -> AsyncIterator[bytes]:
        """The session's events from sequence number ``start`` on, as they are written, until the end
        entry. Several ready events go out in one chunk; ``KEEP_ALIVE`` when none came for
        ``keep_alive`` seconds."""
        redis = self.client()
        key, readers = events_key(session_id), readers_key(session_id)
        reader = uuid.uuid4().hex
        last = f"{start}-0"  # exclusive: the first entry returned is event `start`
        block_ms = max(1, int(keep_alive * 1000))
        unreachable_since: float | None = None
        registered = 0.0
        idle_checks = 0
        try:
            if start and await self.ended_before(session_id, start):
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
