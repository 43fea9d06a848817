"""POST/DELETE /api/v1/stream/sessions/<uuid>/feedback: the asker's 👍/👎 on an answer."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from streaming.engine import metrics
from streaming.models import AnswerFeedback, ApiKey
from tests.conftest import log_session

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS = "/api/v1/stream/sessions/"


def url(session) -> str:
    return f"{SESSIONS}{session.id if hasattr(session, 'id') else session}/feedback"


@pytest.fixture
def api(client, user, access_token):
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {access_token(user)}"
    return client


def post(api, session, body):
    return api.post(url(session), body, content_type="application/json")


def error_of(response) -> tuple[int, str]:
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()["error"]["code"]


def test_give_change_and_withdraw(api, user):
    session = log_session(user)
    given = post(
        api, session, {"rating": "down", "reasons": ["incorrect", "other"], "comment": "  Te kort. "}
    )
    assert given.status_code == 201
    body = given.json()
    assert set(body) == {"rating", "reasons", "comment", "created_at", "updated_at"}
    assert (body["rating"], body["reasons"], body["comment"]) == ("down", ["incorrect", "other"], "Te kort.")

    changed = post(api, session, {"rating": "up"})
    assert changed.status_code == 200
    assert (changed.json()["rating"], changed.json()["reasons"], changed.json()["comment"]) == ("up", [], "")
    assert AnswerFeedback.objects.count() == 1
    assert changed.json()["created_at"] == body["created_at"]

    withdrawn = api.delete(url(session))
    assert withdrawn.status_code == 204 and withdrawn.content == b""
    assert not AnswerFeedback.objects.exists()
    assert error_of(api.delete(url(session))) == (404, "not_found")


def test_the_session_detail_shows_it(api, user):
    session = log_session(user)
    assert api.get(f"{SESSIONS}{session.id}").json()["feedback"] is None
    post(api, session, {"rating": "down", "reasons": ["wrong_sources"], "comment": "Bron klopt niet"})
    feedback = api.get(f"{SESSIONS}{session.id}").json()["feedback"]
    assert (feedback["rating"], feedback["reasons"], feedback["comment"]) == (
        "down",
        ["wrong_sources"],
        "Bron klopt niet",
    )
    listed = api.get(SESSIONS).json()["results"][0]
    assert listed["feedback"]["rating"] == "down"


def test_another_users_session_is_not_there(api, django_user_model):
    other = django_user_model.objects.create_user("other", password="a-long-pass-123")
    theirs = log_session(other)
    AnswerFeedback.objects.create(session=theirs, rating="up")
    assert error_of(post(api, theirs, {"rating": "down"})) == (404, "not_found")
    assert error_of(api.delete(url(theirs))) == (404, "not_found")
    assert error_of(post(api, uuid.uuid4(), {"rating": "up"})) == (404, "not_found")
    assert AnswerFeedback.objects.get().rating == "up"


def test_a_running_answer_cannot_be_rated_yet(api, user):
    running = log_session(user, status="streaming")
    assert error_of(post(api, running, {"rating": "up"})) == (409, "session_running")
    assert not AnswerFeedback.objects.exists()


def test_other_methods_are_405(api, user):
    session = log_session(user)
    for response in (api.get(url(session)), api.put(url(session), {}, content_type="application/json")):
        assert error_of(response) == (405, "method_not_allowed")
        assert response["Allow"] == "POST, DELETE"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_rating"),
        ({"rating": "meh"}, "invalid_rating"),
        ({"rating": 1}, "invalid_rating"),
        ({"rating": ["up"]}, "invalid_rating"),
        ({"rating": "down", "reasons": "incorrect"}, "invalid_reasons"),
        ({"rating": "down", "reasons": ["boring"]}, "invalid_reasons"),
        ({"rating": "down", "reasons": [1]}, "invalid_reasons"),
        ({"rating": "down", "reasons": ["other", "other"]}, "invalid_reasons"),
        ({"rating": "up", "reasons": ["incorrect"]}, "invalid_reasons"),
        ({"rating": "down", "comment": 5}, "invalid_comment"),
        ({"rating": "down", "comment": {"text": "x"}}, "invalid_comment"),
        ({"rating": "down", "comment": "a\x00b"}, "invalid_comment"),
        ({"rating": "down", "comment": "x" * 2001}, "comment_too_long"),
    ],
)
def test_hostile_bodies_are_400(api, user, body, code):
    session = log_session(user)
    assert error_of(post(api, session, body)) == (400, code)
    assert not AnswerFeedback.objects.exists()


def test_bodies_that_are_not_json_objects(api, user):
    session = log_session(user)
    assert error_of(api.post(url(session), "[1]", content_type="application/json")) == (400, "invalid_json")
    assert error_of(api.post(url(session), "{", content_type="application/json")) == (400, "invalid_json")
    assert error_of(api.post(url(session), "rating=up", content_type="text/plain"))[0] == 415


def test_a_comment_at_the_limit_once_trimmed_and_null_fields(api, user):
    session = log_session(user)
    response = post(api, session, {"rating": "down", "reasons": None, "comment": " " + "x" * 2000 + "\n"})
    assert response.status_code == 201 and len(response.json()["comment"]) == 2000
    assert post(api, session, {"rating": "down", "comment": None}).json()["comment"] == ""


def test_anonymous_is_401_and_session_callers_need_csrf(user):
    session = log_session(user)
    assert error_of(Client().post(url(session), {"rating": "up"}, content_type="application/json")) == (
        401,
        "not_authenticated",
    )
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    refused = browser.post(url(session), {"rating": "up"}, content_type="application/json")
    assert error_of(refused) == (403, "csrf_failed")
    browser.get("/accounts/login/")  # sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    given = browser.post(
        url(session), {"rating": "up"}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert given.status_code == 201


def test_the_metrics_count_ratings_given_and_changed(api, user):
    def count(rating: str) -> float:
        return REGISTRY.get_sample_value("evi360_answer_feedback_total", {"rating": rating}) or 0.0

    up, down = count("up"), count("down")
    session = log_session(user)
    post(api, session, {"rating": "down"})
    post(api, session, {"rating": "down", "comment": "only the comment changes"})
    post(api, session, {"rating": "up"})
    assert (count("up") - up, count("down") - down) == (1, 1)
    assert b'evi360_answer_feedback_total{rating="down"}' in metrics.exposition()


def test_an_api_key_works_too(user):
    session = log_session(user)
    _, raw = ApiKey.issue(user, "evaluation")
    keyed = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert keyed.post(url(session), {"rating": "up"}, content_type="application/json").status_code == 201
    assert keyed.delete(url(session)).status_code == 204


def test_the_feedback_goes_with_its_session(api, user):
    session = log_session(user)
    post(api, session, {"rating": "down", "reasons": ["other"]})
    session.delete()
    assert not AnswerFeedback.objects.exists()
