"""The asker's feedback on an answer: given, changed, withdrawn. Sync functions: the API calls
them through ``run_db``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from streaming.models import AnswerFeedback, Status, StreamSession


class SessionNotFound(Exception):
    """No such session of this user (another user's is not found either)."""


class SessionRunning(Exception):
    """The answer is still streaming: there is nothing finished to rate yet."""


@dataclass(frozen=True)
class Saved:
    feedback: AnswerFeedback
    created: bool
    rating_changed: bool  # new, or another rating than before (what the metrics count)


def save_feedback(
    user: object, session_id: uuid.UUID, *, rating: str, reasons: list[str], comment: str
) -> Saved:
    """Give or change the feedback on one of ``user``'s finished sessions."""
    with transaction.atomic():
        status = (
            StreamSession.objects.of_user(user).filter(pk=session_id).values_list("status", flat=True).first()
        )
        if status is None:
            raise SessionNotFound
        if status == Status.STREAMING:
            raise SessionRunning
        before = AnswerFeedback.objects.select_for_update().filter(session_id=session_id).first()
        if before is None:
            try:
                with transaction.atomic():
                    feedback = AnswerFeedback.objects.create(
                        session_id=session_id, rating=rating, reasons=reasons, comment=comment
                    )
            except IntegrityError:  # the same session's feedback sent twice at once: update it
                before = AnswerFeedback.objects.select_for_update().get(session_id=session_id)
            else:
                return Saved(feedback, created=True, rating_changed=True)
        changed = before.rating != rating
        before.rating, before.reasons, before.comment = rating, reasons, comment
        before.save(update_fields=["rating", "reasons", "comment", "updated_at"])
        return Saved(before, created=False, rating_changed=changed)


def withdraw_feedback(user: object, session_id: uuid.UUID) -> bool:
    """Delete the feedback on one of ``user``'s sessions; False when there was none."""
    deleted, _ = AnswerFeedback.objects.filter(session_id=session_id, session__user=user).delete()
    return bool(deleted)
