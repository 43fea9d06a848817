"""The knowledge base: source documents and the chunks that retrieval returns and answers cite."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Language(models.TextChoices):
    DUTCH = "nl", "Nederlands"
    ENGLISH = "en", "English"


class Source(models.Model):
    """One loaded document. ``origin`` identifies the file it came from, so a changed file
    replaces its own chunks; ``content_hash`` makes re-loading an unchanged file a no-op."""

    origin = models.CharField(max_length=500, unique=True)
    title = models.CharField(max_length=300)
    url = models.URLField(max_length=500, blank=True)
    language = models.CharField(max_length=2, choices=Language.choices)
    content_hash = models.CharField(max_length=64)
    loaded_at = models.DateTimeField()

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Chunk(models.Model):
    """A passage of a source of roughly 100-300 words, with the headings above it.

    ``search_text`` holds the Snowball stems of heading and text; the full-text index (SQLite FTS5
    or a PostgreSQL tsvector with a GIN index, see migration 0002) is built from it.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    heading_path = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    page = models.PositiveIntegerField(null=True, blank=True)  # the PDF page it is on; else null
    search_text = models.TextField(editable=False)

    class Meta:
        ordering = ["source", "position"]
        constraints = [
            models.UniqueConstraint(fields=["source", "position"], name="chunk_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.source.title} #{self.position}"


class ChunkVector(models.Model):
    """A passage's dense vector (float32, L2-normalised), with the model it came from and its
    length. Only vectors of the configured model are searched (``citations/vectors.py``); a
    passage whose vector is missing or of another model is found by full-text search alone until
    it is embedded again. A table of its own, so writing vectors leaves the full-text index alone."""

    chunk = models.OneToOneField(Chunk, on_delete=models.CASCADE, primary_key=True, related_name="vector")
    model = models.CharField(max_length=200)
    dimensions = models.PositiveIntegerField()
    vector = models.BinaryField()

    class Meta:
        indexes = [models.Index(fields=["model"], name="chunkvector_model")]

    def __str__(self) -> str:
        return f"{self.chunk_id}: {self.model} ({self.dimensions})"


class IndexVersion(models.Model):
    """One row whose number goes up with every change to the knowledge base's passages or vectors,
    in the same transaction: each worker compares it with the version of the vectors it holds and
    reloads them when it moved (``citations/vectors.py``), so every worker searches what is stored."""

    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"knowledge base version {self.version}"

    @classmethod
    def bump(cls) -> None:
        if not cls.objects.filter(pk=1).update(version=models.F("version") + 1):
            cls.objects.create(pk=1, version=1)

    @classmethod
    def current(cls) -> int:
        # Read with every batch of stream starts: plain SQL, a tenth of the ORM's cost.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"SELECT version FROM {cls._meta.db_table} WHERE id = 1")
            row = cursor.fetchone()
        return row[0] if row else 0


class Upload(models.Model):
    """A file uploaded in the admin, processed in the background (``citations/uploads.py``).

    Its bytes are kept in the row until it is processed, so any worker process can claim it;
    ``heartbeat_at`` moves while a worker processes it, so a row left ``processing`` by a dead
    worker is seen as stale, retried once, then marked failed."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"

    name = models.CharField(max_length=255)
    content = models.BinaryField(editable=False, null=True)
    size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=500, blank=True)
    chunk_count = models.PositiveIntegerField(null=True, blank=True)
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="upload_status")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"
