"""Where the Redis event log keeps what (``streaming.eventlog.redis`` tells why)."""

from __future__ import annotations

import os
import socket

import redis.asyncio as aioredis
from django.conf import settings

# Far above any answer (a 10,000-token answer is ~10,000 events): a bound, never a trim.
MAX_EVENTS = 100_000
BOUND = {"maxlen": MAX_EVENTS, "approximate": True}
READER_TTL = 60.0  # a remote reader re-registers at least every keep-alive interval
CANCEL_CHANNEL = "evi360:cancel"
WORKER = f"{socket.gethostname()}:{os.getpid()}"


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


async def stored(redis: aioredis.Redis, key: str) -> tuple[int, bool]:
    """How many events the stream holds, and whether its end is written."""
    last = await redis.xrevrange(key, count=1)
    if not last:
        return 0, False
    entry, fields = last[0]
    count = int(entry.split(b"-")[0])
    return (count - 1, True) if b"end" in fields else (count, False)
