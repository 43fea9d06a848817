"""Files uploaded in the admin, processed in the background: parse, chunk, embed, index.

Each file is an ``Upload`` row holding its bytes until processed, so any process can do the work:
a worker claims the oldest queued row (``select_for_update(skip_locked=True)`` where the database
has it, and a conditional update that only one claimer can win everywhere), keeps a heartbeat
while it works, and records the outcome in the transaction that stores the passages, so a file is
loaded entirely or not at all. A row whose heartbeat went stale (its worker died) is retried once,
then marked failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from . import embeddings
from .formats import SUFFIXES
from .loader import DocumentError, max_bytes, parse_document
from .models import Source, Upload
from .services import Outcome, load_document

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # the first try and one retry after a dead worker
Status = Upload.Status


def origin_for(name: str) -> str:
    """Uploads are known by their file name: uploading the same name again replaces the source."""
    return f"upload:{name}"


def enqueue(files: Iterable[UploadedFile], user: object | None = None) -> list[Upload]:
    """One row a file: queued with its bytes, or failed at once if its size or type rule it out."""
    rows = []
    limit = max_bytes()
    for file in files:
        name = Path(file.name or "").name[:255] or "unnamed"
        row = Upload(name=name, size=file.size or 0, uploaded_by=user if getattr(user, "pk", None) else None)
        suffix = Path(name).suffix.lower()
        if row.size > limit:
            _refuse(row, f"file is larger than EVI360_MAX_UPLOAD_MB={settings.EVI360_MAX_UPLOAD_MB}")
        elif suffix not in SUFFIXES:
            _refuse(row, f"unsupported file type {suffix or '(none)'}; use {', '.join(SUFFIXES)}")
        else:
            row.content = file.read()
        rows.append(row)
    Upload.objects.bulk_create(rows)
    if any(row.status == Status.QUEUED for row in rows):
        transaction.on_commit(kick)
    return rows


def _refuse(row: Upload, reason: str) -> None:
    row.status, row.reason, row.finished_at = Status.FAILED, reason, timezone.now()


def recover_stale() -> int:
    """Rows left ``processing`` by a worker that stopped: queued again once, then failed."""
    now = timezone.now()
    stale = Upload.objects.filter(
        status=Status.PROCESSING,
        heartbeat_at__lt=now - timedelta(seconds=settings.EVI360_UPLOAD_STALE_SECONDS),
    )
    retried = stale.filter(attempts__lt=MAX_ATTEMPTS).update(
        status=Status.QUEUED, reason="retrying: the worker processing it stopped"
    )
    failed = stale.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=Status.FAILED,
        reason="the worker processing it stopped, twice; upload it again",
        finished_at=now,
        content=None,
    )
    return retried + failed


def claim() -> Upload | None:
    """The oldest queued row, now ``processing`` and ours; None when nothing waits."""
    while True:
        with transaction.atomic():
            queued = Upload.objects.filter(status=Status.QUEUED).order_by("created_at", "id")
            if connection.features.has_select_for_update_skip_locked:
                queued = queued.select_for_update(skip_locked=True)
            pk = queued.values_list("id", flat=True).first()
            if pk is None:
                return None
            now = timezone.now()
            won = Upload.objects.filter(pk=pk, status=Status.QUEUED).update(
                status=Status.PROCESSING, attempts=F("attempts") + 1, claimed_at=now, heartbeat_at=now
            )
        if won:
            return Upload.objects.get(pk=pk)


class _Lost(Exception):
    """The row was taken from us (declared stale) while we worked: roll our writes back."""


def process(upload: Upload) -> None:
    """Parse, embed and store one claimed upload, and record how it went."""
    with _heartbeat(upload.pk):
        try:
            document = parse_document(origin_for(upload.name), upload.name, bytes(upload.content or b""))

            def record(outcome: Outcome) -> None:
                done = Upload.objects.filter(pk=upload.pk, status=Status.PROCESSING).update(
                    status=Status.DONE,
                    reason="unchanged: this file was loaded before" if outcome is Outcome.UNCHANGED else "",
                    chunk_count=len(document.chunks),
                    source=Source.objects.get(origin=document.origin),
                    finished_at=timezone.now(),
                    content=None,
                )
                if not done:
                    raise _Lost

            load_document(document, record)
        except DocumentError as exc:
            _fail(upload.pk, str(exc))
        except embeddings.EmbeddingUnavailable as exc:
            _fail(upload.pk, f"could not embed the passages with {embeddings.model_name()}: {exc}")
        except _Lost:
            logger.warning("upload %s was declared stale while being processed", upload.pk)
        except Exception as exc:  # a parser's bug must fail this file, not the worker
            logger.exception("upload %s failed", upload.pk)
            _fail(upload.pk, f"unexpected error ({exc.__class__.__name__})")


def _fail(pk: int, reason: str) -> None:
    Upload.objects.filter(pk=pk, status=Status.PROCESSING).update(
        status=Status.FAILED, reason=reason[:500], finished_at=timezone.now(), content=None
    )


@contextmanager
def _heartbeat(pk: int) -> Iterator[None]:
    """Moves the row's heartbeat while a long parse or embedding runs, from a thread of its own."""
    stop = threading.Event()
    every = max(1.0, settings.EVI360_UPLOAD_STALE_SECONDS / 4)

    def beat() -> None:
        try:
            while not stop.wait(every):
                Upload.objects.filter(pk=pk, status=Status.PROCESSING).update(heartbeat_at=timezone.now())
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, name=f"upload-heartbeat-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_pending() -> int:
    """Process every waiting upload (after recovering stale ones); returns how many."""
    recover_stale()
    count = 0
    while (upload := claim()) is not None:
        process(upload)
        count += 1
    return count


def waiting() -> bool:
    """Anything queued, or processing with a stale heartbeat."""
    cutoff = timezone.now() - timedelta(seconds=settings.EVI360_UPLOAD_STALE_SECONDS)
    return (
        Upload.objects.filter(status=Status.QUEUED).exists()
        or Upload.objects.filter(status=Status.PROCESSING, heartbeat_at__lt=cutoff).exists()
    )


_lock = threading.Lock()
_worker: threading.Thread | None = None
_again = False


def kick() -> None:
    """Start this process's worker thread (EVI360_UPLOAD_WORKER=thread), or tell the running one
    to look again; never processes in the caller's thread (the request)."""
    global _worker, _again
    if settings.EVI360_UPLOAD_WORKER != "thread":
        return
    with _lock:
        if _worker is not None:
            _again = True
            return
        _worker = threading.Thread(target=_drain, name="upload-worker", daemon=True)
        _worker.start()


def _drain() -> None:
    global _worker, _again
    try:
        while True:
            try:
                run_pending()
            except Exception:  # the database went away: the next kick or the command retries
                logger.exception("upload worker stopped")
                return
            with _lock:
                if not _again:
                    return
                _again = False
    finally:
        with _lock:
            _worker = None
        connections.close_all()
