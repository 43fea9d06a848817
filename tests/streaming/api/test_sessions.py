"""GET /api/v1/stream/sessions/ and /api/v1/stream/sessions/<uuid>: a user's own stream log."""

from __future__ import annotations

import uuid

import pytest

from citations.models import Source
from tests.conftest import cite, log_session

pytestmark = pytest.mark.django_db(transaction=True)
LIST = "/api/v1/stream/sessions/"


make_session = log_session


@pytest.fixture
def api(client, user, access_token):
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {access_token(user)}"
    return client


def test_lists_own_sessions_newest_first_paginated(api, user, django_user_model):
    other = django_user_model.objects.create_user("other", password="a-long-pass-123")
    sessions = [make_session(user, minutes_ago=m) for m in (30, 20, 10)]
    make_session(other)
    body = api.get(LIST, {"page_size": 2}).json()
    assert body["count"] == 3
    assert [s["id"] for s in body["results"]] == [str(sessions[2].id), str(sessions[1].id)]
    assert body["next"]
    page2 = api.get(body["next"]).json()
    assert [s["id"] for s in page2["results"]] == [str(sessions[0].id)]


def test_detail_has_the_outcome_answer_and_citations(api, user, small_kb):
    source = Source.objects.get(title="Tillen")
    session = make_session(
        user,
        ttft_ms=120,
        duration_ms=900,
        input_tokens=50,
        output_tokens=12,
        token_events=6,
        answer="Maximaal 23 kg [1].",
    )
    cite(session, "Tillen")
    body = api.get(f"{LIST}{session.id}").json()
    assert body["status"] == "completed" and body["language"] == "nl" and body["model"] == "offline"
    assert (body["ttft_ms"], body["duration_ms"], body["input_tokens"], body["output_tokens"]) == (
        120,
        900,
        50,
        12,
    )
    assert body["answer"] == "Maximaal 23 kg [1]."
    assert body["citations"] == [
        {
            "marker": 1,
            "offset": 15,
            "source": {
                "id": source.id,
                "title": "Tillen",
                "url": "https://kb.example/tillen",
                "snippet": "Een werknemer tilt niet meer dan 23 kg. Gebruik een hulpmiddel bij zware lasten.",
                "passage": source.chunks.first().pk,
                "page": None,  # a Markdown source; PDF pages: tests/citations/test_page_numbers.py
            },
        }
    ]
    for key in ("created_at", "first_token_at", "finished_at", "error_code", "error_message"):
        assert key in body
    # The cited passage gone from the knowledge base: the log still shows title, URL and the
    # passage's text, kept with the citation (a deleted or re-uploaded PDF: test_kept_passages.py).
    source.chunks.all().delete()
    (citation,) = api.get(f"{LIST}{session.id}").json()["citations"]
    assert citation["source"]["title"] == "Tillen"
    assert citation["source"]["snippet"] == body["citations"][0]["source"]["snippet"]
    assert citation["source"]["passage"] is None


def test_another_users_session_is_404(api, django_user_model):
    other = django_user_model.objects.create_user("other", password="a-long-pass-123")
    response = api.get(f"{LIST}{make_session(other).id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unknown_and_malformed_ids_are_json_404(api):
    assert api.get(f"{LIST}{uuid.uuid4()}").json()["error"]["code"] == "not_found"
    response = api.get(f"{LIST}not-a-uuid")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_session_auth_works_too(client, user):
    client.force_login(user)
    make_session(user)
    assert client.get(LIST).json()["count"] == 1


def test_anonymous_is_401(client):
    response = client.get(LIST)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_sessions_cannot_be_changed_and_finished_ones_not_stopped(api, user):
    session = make_session(user)
    for response in (
        api.put(LIST, {}, content_type="application/json"),
        api.put(f"{LIST}{session.id}", {}, content_type="application/json"),
    ):
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
    response = api.delete(f"{LIST}{session.id}")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_running"
    session.refresh_from_db()
    assert session.status == "completed"


def test_token_obtain_refresh_and_bad_credentials(client, user):
    url = "/api/v1/auth/token/"
    response = client.post(
        url, {"username": "specialist", "password": "wrong"}, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    tokens = client.post(
        url, {"username": "specialist", "password": "a-long-pass-123"}, content_type="application/json"
    ).json()
    refreshed = client.post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, content_type="application/json"
    )
    assert refreshed.status_code == 200 and refreshed.json()["access"]
    bad = client.post("/api/v1/auth/token/refresh/", {"refresh": "nope"}, content_type="application/json")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "not_authenticated"
    missing = client.post(url, {}, content_type="application/json")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": "abc"},
        {"page_size": "0"},
        {"page_size": "101"},
        {"page_size": ""},
        {"page": "0"},
        {"page": "-1"},
        {"page": "zwei"},
        {"status": ""},
        {"since": ""},
        {"until": "gisteren"},
    ],
)
def test_malformed_paging_and_filters_are_400(api, user, params):
    make_session(user)
    response = api.get(LIST, params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert next(iter(params)) in response.json()["error"]["message"]


def test_a_page_past_the_last_is_404(api, user):
    make_session(user)
    assert api.get(LIST, {"page": "1", "page_size": "100"}).status_code == 200
    response = api.get(LIST, {"page": "2"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_allow_lists_the_methods_the_async_views_add(api, user):
    session = make_session(user)
    assert set(api.options(LIST)["Allow"].split(", ")) == {"GET", "POST", "HEAD", "OPTIONS"}
    detail = api.put(f"{LIST}{session.id}", {}, content_type="application/json")
    assert detail.status_code == 405
    assert set(detail["Allow"].split(", ")) == {"GET", "DELETE", "HEAD", "OPTIONS"}
