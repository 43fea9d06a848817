"""The asker's 👍/👎 on an answer: ``POST`` gives or changes it, ``DELETE`` withdraws it, at
/api/v1/stream/sessions/<id>/feedback. Only the session's owner; for anyone else it is not there."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from evi360.db import run_db
from evi360.errors import ApiError, error_response
from streaming.access.auth import Caller
from streaming.api.bodies import validated_feedback
from streaming.api.decorators import authorize
from streaming.api.sessions import FeedbackSerializer
from streaming.engine import metrics
from streaming.store import feedback as store

METHODS = "POST, DELETE"


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "Not found.")


@authorize("POST", csrf=True, json_body=True)
async def _give(request: HttpRequest, caller: Caller, pk: uuid.UUID) -> HttpResponse:
    body = validated_feedback(request.body)
    try:
        saved = await run_db(store.save_feedback, caller.user, pk, **body)
    except store.SessionNotFound:
        raise _not_found() from None
    except store.SessionRunning:
        raise ApiError(
            409, "session_running", "This answer is still streaming; rate it once it is done."
        ) from None
    if saved.rating_changed:
        metrics.record_feedback(saved.feedback.rating)
    return JsonResponse(FeedbackSerializer(saved.feedback).data, status=201 if saved.created else 200)


@authorize("DELETE", csrf=True)
async def _withdraw(request: HttpRequest, caller: Caller, pk: uuid.UUID) -> HttpResponse:
    if not await run_db(store.withdraw_feedback, caller.user, pk):
        raise _not_found()
    response = HttpResponse(status=204)
    del response["Content-Type"]
    return response


@csrf_exempt  # CSRF applies to session callers only; authorize checks it
async def feedback(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """POST ``{rating, reasons?, comment?}``: 201 (new) or 200 (changed) with the feedback.
    DELETE: 204, or 404 when there is none."""
    if request.method == "POST":
        return await _give(request, pk)
    if request.method == "DELETE":
        return await _withdraw(request, pk)
    return error_response(405, "method_not_allowed", f"Use {METHODS}.", headers={"Allow": METHODS})
