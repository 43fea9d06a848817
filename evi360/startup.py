"""The server process's start-up, step by step in order: ``start()``, run once by evi360/asgi.py
after Django is set up and the application built. Each step takes work off the first requests or
stops the process early with the reason."""

from __future__ import annotations

import gc
import logging

from django.conf import settings
from django.db import DatabaseError, connections

from citations import embeddings, language, uploads
from citations.vectors import INDEX
from streaming.engine import agent
from streaming.store.writes import mark_interrupted

log = logging.getLogger(__name__)


def warm_up_language_models() -> None:
    """Loaded now, not during the first request (about half a second)."""
    language.warm_up()


def check_embeddings() -> None:
    """The embedding model, loaded (and, for a provider, reached): one that cannot embed stops
    the process here with the reason, like a bad setting."""
    embeddings.check_at_start_up()


def warm_up_agent() -> None:
    """Pydantic AI's first run (its price tables, schemas), off the first user's time to first token."""
    try:
        agent.warm_up()
    except Exception:  # a slower first answer, not a reason to refuse to start
        log.exception("the agent's warm-up run failed")


def mark_interrupted_streams() -> None:
    """Sessions a dead process left "streaming" become "interrupted" (only stale ones, so another
    worker's live streams are never touched)."""
    try:
        count = mark_interrupted()
    except DatabaseError as exc:  # not migrated yet, or the database is down: say so, start anyway
        log.warning("could not mark interrupted streams: %s", exc)
    else:
        if count:
            log.warning("%d interrupted stream session(s) marked", count)
    finally:
        connections.close_all()


def load_passage_vectors() -> None:
    """The passage vectors, read now rather than by the first question (the matrix is kept)."""
    if not embeddings.enabled():
        return
    try:
        matrix = INDEX.current()
    except DatabaseError as exc:
        log.warning("could not load the passage vectors yet: %s", exc)
    else:
        log.info("%d passage vectors of %s loaded", len(matrix), matrix.model)
    finally:
        connections.close_all()


def resume_uploads() -> None:
    """Files uploaded in the admin that wait (queued before a restart, or left by a dead worker)
    are processed by this process's worker thread (EVI360_UPLOAD_WORKER=thread), not only after
    the next upload."""
    if settings.EVI360_UPLOAD_WORKER != "thread":
        return
    try:
        waiting = uploads.waiting()
    except DatabaseError as exc:
        log.warning("could not look for waiting uploads: %s", exc)
        return
    finally:
        connections.close_all()
    if waiting:
        uploads.kick()


def freeze_the_heap() -> None:
    """Everything loaded so far (Django, Pydantic AI, the language models, …) lives as long as the
    process: out of the garbage collector's sight, a full collection (otherwise a long walk through
    it, in the middle of somebody's stream) only sees what requests made. Last, for that reason."""
    gc.collect()
    gc.freeze()


STEPS = (
    warm_up_language_models,
    check_embeddings,
    warm_up_agent,
    mark_interrupted_streams,
    load_passage_vectors,
    resume_uploads,
    freeze_the_heap,
)


def start() -> None:
    for step in STEPS:
        step()
