"""Per-session event logs: a run's log in this process (``memory``, ``run``, ``readers``), and
the shared log other workers read (``base``; ``redis``), chosen by ``EVI360_EVENT_LOG``.
Engine and endpoints import the names below from here."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

from streaming.eventlog.memory import EventLog
from streaming.eventlog.readers import Collected, collect, sse_body, stream_response
from streaming.eventlog.run import RUNS, StreamRun, retire

if TYPE_CHECKING:
    from streaming.eventlog.base import SharedEventLog

__all__ = [
    "RUNS",
    "Collected",
    "EventLog",
    "StreamRun",
    "collect",
    "retire",
    "shared",
    "sse_body",
    "stream_response",
]


def shared() -> SharedEventLog | None:
    """The shared event log of this process when one is configured (``EVENT_LOG_BACKENDS``), else
    None. Imported on first use only, so redis-py stays unloaded without Redis."""
    path = settings.EVENT_LOG_BACKENDS[settings.EVI360_EVENT_LOG]
    return None if path is None else _instance(path)


@functools.cache
def _instance(path: str) -> SharedEventLog:
    return import_string(path)()
