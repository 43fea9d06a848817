"""The log of every answer stream: who asked what, how it went, and what it cited."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    STREAMING = "streaming", "streaming"
    COMPLETED = "completed", "completed"
    ERROR = "error", "error"
    CANCELLED = "cancelled", "cancelled"
    TIMEOUT = "timeout", "timeout"
    # Left "streaming" by a process that died; set at start-up (evi360/startup.py), by the
    # Redis event log for dead workers, and by mark_interrupted_streams.
    INTERRUPTED = "interrupted", "interrupted"


def stale_after() -> timedelta:
    """How old a session still "streaming" must be to belong to a process that died: no live
    stream runs longer than the timeout, and the margin covers clocks and slow writes."""
    return timedelta(seconds=settings.EVI360_STREAM_TIMEOUT + settings.EVI360_INTERRUPTED_MARGIN)


def stale_cutoff(now: datetime | None = None) -> datetime:
    """Sessions still "streaming" that started before this are stale (``stale_after``)."""
    return (now or timezone.now()) - stale_after()


class ClientKind(models.TextChoices):
    WEB = "web", "web"
    API = "api", "api"
    OPENAI = "openai", "openai"
    AI_SDK = "ai_sdk", "ai_sdk"  # the AI SDK's UI message stream (useChat), streaming.aisdk


class Conversation(models.Model):
    """A user's thread of questions; each question is a StreamSession (a turn)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    # The first question, shortened: no extra model call for a title.
    title = models.CharField(max_length=120)
    # The AI SDK's chat id (useChat's, 16 random characters by default): its conversation is
    # found by it. Unique across users, so another user's chat id is a 404, not a second chat.
    chat_id = models.CharField(max_length=128, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title


class StreamSessionQuerySet(models.QuerySet):
    def active(self) -> StreamSessionQuerySet:
        """Sessions still streaming (or left so by a process that died: see ``stale``)."""
        return self.filter(status=Status.STREAMING)

    def stale(self, now: datetime | None = None) -> StreamSessionQuerySet:
        """Sessions left "streaming" by a process that died (``stale_cutoff``)."""
        return self.active().filter(created_at__lt=stale_cutoff(now))

    def of_user(self, user: object) -> StreamSessionQuerySet:
        return self.filter(user=user)

    def interrupt(self) -> int:
        """Mark these sessions, if still streaming, ``interrupted``: their worker is gone.
        Returns how many."""
        return self.active().update(
            status=Status.INTERRUPTED,
            error_code="interrupted",
            error_message="The server stopped while this answer was streaming.",
            finished_at=timezone.now(),
        )


class StreamSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stream_sessions"
    )
    # Deleting a conversation detaches its turns: the stream log stays whole for staff. No
    # database constraint: the column predates the conversations table (migration 0003).
    conversation = models.ForeignKey(
        Conversation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="turns",
        db_constraint=False,
    )
    query = models.TextField()
    language = models.CharField(max_length=2)
    model_name = models.CharField(max_length=100)
    client_kind = models.CharField(max_length=6, choices=ClientKind.choices)
    status = models.CharField(max_length=11, choices=Status.choices, default=Status.STREAMING)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    token_events = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    answer = models.TextField(blank=True)
    # Answered again (the AI SDK's regenerate): shown in the log, left out of the history.
    superseded = models.BooleanField(default=False)
    # The earlier turn this one answers again (the chat page's Regenerate, the API's
    # ``regenerate``); both stay in the conversation, the earlier one superseded.
    regenerates = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="regenerations"
    )

    objects = StreamSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="session_user_recent"),
            models.Index(fields=["status", "created_at"], name="session_status_time"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class StreamReplay(models.Model):
    """A finished stream's SSE events as they went out, for clients that come back for them
    within ``EVI360_EVENT_RETENTION`` (an EventSource reconnecting, a page opening its stream
    late, another worker, a restarted one). Kept here rather than in the worker's memory, so that
    memory does not grow with traffic; deleted once ``kept_until`` has passed."""

    session = models.OneToOneField(
        StreamSession, on_delete=models.CASCADE, primary_key=True, related_name="replay"
    )
    # streaming.store.replay.pack(): the encoded events, zlib-compressed.
    events = models.BinaryField()
    kept_until = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"replay of {self.session_id}"


class StreamCitation(models.Model):
    """A marker ``[n]`` that was streamed, the source it points at, and where it first appeared.
    Title, URL, the passage's text and page are copied so the log stays readable after the
    knowledge base changes (a source deleted, or replaced by a re-upload: ``chunk`` goes null)."""

    session = models.ForeignKey(StreamSession, on_delete=models.CASCADE, related_name="citations")
    marker = models.PositiveSmallIntegerField()
    chunk = models.ForeignKey("citations.Chunk", null=True, on_delete=models.SET_NULL, related_name="+")
    source = models.ForeignKey(
        "citations.Source", null=True, on_delete=models.SET_NULL, related_name="citations"
    )
    title = models.CharField(max_length=300)
    url = models.URLField(max_length=500, blank=True)
    # The whole passage, not the shortened snippet the stream showed: the feedback export wants
    # the passage's text, and the snippet is derived from it (engine.generate.snippet).
    text = models.TextField(blank=True, default="")
    page = models.PositiveIntegerField(null=True, blank=True)  # the passage's PDF page; else null
    offset = models.PositiveIntegerField()

    class Meta:
        ordering = ["session", "marker"]
        constraints = [models.UniqueConstraint(fields=["session", "marker"], name="citation_unique_marker")]

    def __str__(self) -> str:
        return f"[{self.marker}] {self.title}"


class Rating(models.TextChoices):
    UP = "up", "up"
    DOWN = "down", "down"


class Reason(models.TextChoices):
    """Why an answer got a 👎 (only with ``down``)."""

    INCORRECT = "incorrect", "incorrect"
    INCOMPLETE = "incomplete", "incomplete"
    WRONG_SOURCES = "wrong_sources", "wrong sources"
    WRONG_LANGUAGE = "wrong_language", "wrong language"
    OTHER = "other", "other"


class AnswerFeedback(models.Model):
    """The asker's 👍/👎 on one answer: one per session, sent again it is updated. Kept with the
    session (and deleted with it) so the stream log, the dashboard and the export read it there."""

    MAX_COMMENT_CHARS = 2000

    session = models.OneToOneField(StreamSession, on_delete=models.CASCADE, related_name="feedback")
    rating = models.CharField(max_length=4, choices=Rating.choices)
    # A list of distinct ``Reason`` values; a JSON list rather than a table: it is only ever read
    # whole, with its feedback (checked by streaming.api.feedback).
    reasons = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "answer feedback"
        verbose_name_plural = "answer feedback"

    def __str__(self) -> str:
        return f"{self.rating} on {self.session_id}"


class ApiKeyQuerySet(models.QuerySet):
    def usable(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiKey(models.Model):
    """A personal API key (for OpenAI-compatible clients such as OpenWebUI, which need a static
    key). The key itself is shown once; only its SHA-256 is stored."""

    PREFIX = "evi_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # The first characters of the key, so its owner can tell keys apart.
    hint = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def digest(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, user: object, name: str) -> tuple[ApiKey, str]:
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(user=user, name=name, hint=raw[:12], key_hash=cls.digest(raw))
        return key, raw


class TokenCutoff(models.Model):
    """The JWTs of a user issued before ``valid_after`` are refused (their ``iat`` is earlier):
    set by a password change, a deactivation or "log out everywhere" (streaming/access/tokens.py)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="token_cutoff"
    )
    valid_after = models.DateTimeField()

    class Meta:
        verbose_name = "token cutoff"

    def __str__(self) -> str:
        return f"tokens of user {self.user_id} valid after {self.valid_after:%Y-%m-%d %H:%M:%S}"
