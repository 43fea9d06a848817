"""Hostile input under /api/ and /v1/ is a 4xx in the family's JSON error shape, never a 500 and
never an HTML page (#18): deep JSON, huge numbers, lone surrogates, impossible dates, huge ids,
wrong methods, unknown paths, too-large bodies, CSRF failures and the 500 handler itself."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from streaming.models import ApiKey
from tests.conftest import log_session

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = "[" * 2000 + "]" * 2000
DEEP_OBJECT = '{"a":' * 2000 + "1" + "}" * 2000
HUGE_NUMBER = '{"query": ' + "9" * 5000 + "}"
# JSON's escape for a lone (unpaired) surrogate: valid JSON, but no UTF-8 text can hold it.
SURROGATE = '"\\ud800 tillen"'


def assert_ours(response, status: int | None = None, code: str | None = None) -> dict:
    """Our /api/ error shape: {"error": {"code", "message"}}."""
    assert response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    error = json.loads(response.content)["error"]
    assert set(error) == {"code", "message"}, error
    if status is not None:
        assert response.status_code == status, error
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_openai(response, status: int | None = None, code: str | None = None) -> dict:
    """OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""
    assert response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    error = json.loads(response.content)["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    if status is not None:
        assert response.status_code == status, error
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture
def web(user) -> Client:
    """A browser: logged in, CSRF checks on, exceptions answered as in production."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def api(user, access_token) -> Client:
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")


@pytest.fixture
def openai(user) -> Client:
    _key, raw = ApiKey.issue(user, "fuzz")
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def refresh(user) -> str:
    from rest_framework_simplejwt.tokens import RefreshToken

    return str(RefreshToken.for_user(user))


REST_JSON_ENDPOINTS = [
    "/api/v1/auth/token/",
    "/api/v1/auth/token/refresh/",
    "/api/v1/auth/logout/",
    "/api/v1/stream/query",
    "/api/v1/stream/sessions/",
    # The body is read before the session is looked up: any session id will do.
    f"/api/v1/stream/sessions/{uuid.UUID(int=1)}/feedback",
]


# --- 1, 2, 6: one JSON parser for every JSON body ---------------------------------------------


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, HUGE_NUMBER, SURROGATE, '{"query": ' + SURROGATE + "}"])
@pytest.mark.parametrize("path", REST_JSON_ENDPOINTS)
def test_hostile_json_is_a_400_on_every_rest_endpoint(api, path, body):
    response = api.post(path, body, content_type="application/json")
    assert_ours(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        DEEP_OBJECT,
        '{"model": "evi-specialist", "n": ' + "1" * 5000 + "}",
        json.dumps({"model": "evi-specialist", "messages": [{"role": "user", "content": "x"}]}).replace(
            '"x"', SURROGATE
        ),
    ],
)
def test_hostile_json_is_a_400_on_chat_completions(openai, body):
    response = openai.post("/v1/chat/completions", body, content_type="application/json")
    assert_openai(response, 400, "invalid_json")


def test_a_surrogate_pair_is_fine(api, small_kb):
    # "\ud83d\ude00" is an emoji written as JSON escapes, not a lone surrogate.
    body = '{"query": "Hoe zwaar mag ik tillen? \\ud83d\\ude00"}'
    response = api.post("/api/v1/stream/query", body, content_type="application/json")
    assert response.status_code == 200


def test_hostile_json_for_a_browser_session_is_a_400_too(user, small_kb):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.post("/api/v1/stream/sessions/", DEEP, content_type="application/json")
    assert_ours(response, 400, "invalid_json")


# --- 3: Last-Event-ID -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["header", "query"])
def test_a_huge_last_event_id_is_a_400(api, user, where):
    session = log_session(user)
    url = f"/api/v1/stream/sessions/{session.id}/events"
    huge = "9" * 4301
    if where == "header":
        response = api.get(url, HTTP_LAST_EVENT_ID=huge)
    else:
        response = api.get(url, {"last_event_id": huge})
    assert_ours(response, 400, "invalid_last_event_id")


# --- 4: paging --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/stream/sessions/", "/api/v1/conversations/"])
@pytest.mark.parametrize("name", ["page", "page_size"])
def test_huge_page_numbers_are_a_400(api, user, path, name):
    log_session(user)
    response = api.get(path, {name: "9" * 5000})
    assert_ours(response, 400, "invalid_request")


# --- 5: dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2024-13-45",
        "2024-02-30",
        "2024-02-30T10:00:00",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "0001-01-01",  # midnight in Amsterdam is before year 1 in UTC
        "9999-12-31",
    ],
)
@pytest.mark.parametrize("name", ["since", "until"])
def test_impossible_dates_are_a_400(api, user, name, value):
    log_session(user)
    response = api.get("/api/v1/stream/sessions/", {name: value})
    if value == "9999-12-31":  # a real date, just far away
        assert response.status_code == 200
        return
    error = assert_ours(response, 400, "invalid_request")
    assert name in error["message"]


# --- 7: the API-keys page ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "", "9" * 5000, "1.5"])
def test_revoking_a_malformed_key_id_is_a_400_page(user, value):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    ApiKey.issue(user, "mine")
    response = client.post("/settings/keys/", {"revoke": value})
    assert response.status_code == 400
    assert "text/html" in response["Content-Type"]
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1


def test_revoking_an_unknown_key_is_still_a_404(user):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    assert client.post("/settings/keys/", {"revoke": "12345"}).status_code == 404


# --- 8: the error handlers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/nope", "/api/v1/stream/sessions/not-a-uuid", "/api/v1/stream/sessions/{}/x"]
)
def test_unknown_api_paths_are_json_404(api, path):
    assert_ours(api.get(path.format(uuid.uuid4())), 404, "not_found")
    assert_ours(api.post(path.format(uuid.uuid4())), 404, "not_found")


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/", "/v1/models/evi-specialist", "/v1/chat/completions/"])
def test_unknown_openai_paths_are_openai_404(openai, path):
    assert_openai(openai.get(path), 404)
    assert_openai(openai.post(path), 404)


def test_unknown_paths_elsewhere_stay_django_pages():
    response = Client(raise_request_exception=False).get("/no-such-page")
    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]


@pytest.mark.parametrize(
    "method, path, allow",
    [
        ("post", "/v1/models", {"GET"}),
        ("delete", "/v1/models", {"GET"}),
        ("get", "/v1/chat/completions", {"POST"}),
        ("put", "/v1/chat/completions", {"POST"}),
    ],
)
def test_wrong_methods_on_v1_are_openai_405_with_allow(openai, method, path, allow):
    response = getattr(openai, method)(path)
    assert_openai(response, 405, "method_not_allowed")
    assert set(response["Allow"].split(", ")) == allow


def test_post_v1_models_with_a_browser_session_is_405_not_a_csrf_page(web):
    assert_openai(web.post("/v1/models"), 405)


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/auth/token/"),
        ("put", "/api/v1/auth/token/refresh/"),
        ("get", "/api/v1/auth/logout/"),
        ("get", "/api/v1/stream/query"),
        ("put", "/api/v1/stream/sessions/"),
        ("post", "/api/v1/stream/sessions/{}"),
        ("post", "/api/v1/stream/sessions/{}/events"),
        ("get", "/api/v1/stream/sessions/{}/feedback"),
        ("put", "/api/v1/stream/sessions/{}/feedback"),
        ("post", "/api/v1/conversations/"),
        ("put", "/api/v1/conversations/{}"),
        ("post", "/api/schema/"),
        ("post", "/api/docs/"),
    ],
)
def test_wrong_methods_on_api_are_json_405_with_allow(api, user, method, path):
    response = getattr(api, method)(path.format(log_session(user).id))
    assert response.status_code in (404, 405)  # a conversation that does not exist may say 404
    assert_ours(response)
    if response.status_code == 405:
        assert response["Allow"]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
def test_options_on_the_docs_and_the_schema_is_json(api, path):
    # Swagger UI's page has only a template renderer, which had no template for the metadata.
    response = api.options(path)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["name"]


def test_csrf_failures_are_json_on_v1_and_api(web):
    # A session caller without the CSRF token: refused in the family's shape, not Django's page.
    assert_ours(web.post("/api/v1/stream/sessions/", {}, content_type="application/json"), 403)
    assert_ours(web.post("/api/nope"), 404)


def test_csrf_failure_view_answers_each_family(rf):
    from evi360.errors import csrf_failure

    assert_ours(csrf_failure(rf.post("/api/v1/x"), "no token"), 403, "csrf_failed")
    assert_openai(csrf_failure(rf.post("/v1/x"), "no token"), 403, "csrf_failed")
    assert "text/html" in csrf_failure(rf.post("/accounts/login/"), "no token")["Content-Type"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/stream/query", '{"query": "' + "x" * 3_000_000 + '"}'),
        ("/api/v1/auth/token/", '{"username": "' + "x" * 3_000_000 + '"}'),
        ("/api/v1/stream/sessions/", '{"query": "' + "x" * 3_000_000 + '"}'),
        (f"/api/v1/stream/sessions/{uuid.UUID(int=1)}/feedback", '{"comment": "' + "x" * 3_000_000 + '"}'),
        ("/v1/chat/completions", '{"model": "' + "x" * 3_000_000 + '"}'),
    ],
)
def test_too_large_bodies_are_json_413(api, openai, path, body):
    client = openai if path.startswith("/v1/") else api
    response = client.post(path, body, content_type="application/json")
    if path.startswith("/v1/"):
        assert_openai(response, 413, "request_too_large")
    else:
        assert_ours(response, 413, "request_too_large")


@pytest.mark.parametrize(
    "exception, status",
    [
        ("RequestDataTooBig", 413),
        ("TooManyFieldsSent", 413),
        ("SuspiciousOperation", 400),
        ("PermissionDenied", 403),
        ("Http404", 404),
        ("RuntimeError", 500),
    ],
)
@pytest.mark.parametrize("prefix", ["/api/", "/v1/", "/elsewhere/"])
def test_error_handlers_answer_each_family(monkeypatch, exception, status, prefix):
    """Whatever a view raises, the handlers answer in the family's shape (DEBUG is off here)."""
    import django.core.exceptions as exceptions
    from django.http import Http404
    from django.urls import path as url

    from evi360 import urls

    error = {"Http404": Http404, "RuntimeError": RuntimeError}.get(exception) or getattr(
        exceptions, exception
    )

    def boom(request):
        raise error("boom")

    monkeypatch.setattr(urls, "urlpatterns", [url(f"{prefix.strip('/')}/boom", boom), *urls.urlpatterns])
    from django.urls import clear_url_caches

    clear_url_caches()
    try:
        response = Client(raise_request_exception=False).get(f"{prefix}boom")
    finally:
        clear_url_caches()
    if prefix == "/elsewhere/" and status == 413:
        status = 400  # Django's own page, as ever
    assert response.status_code == status
    if prefix == "/api/":
        assert_json = assert_ours
    elif prefix == "/v1/":
        assert_json = assert_openai
    else:
        assert "text/html" in response["Content-Type"]
        return
    assert response["Content-Type"].startswith("application/json")
    body = response.json()["error"]
    keys = {"code", "message"} if prefix == "/api/" else {"message", "type", "param", "code"}
    assert set(body) == keys
    if status < 500:
        assert_json(response, status)


async def _asgi(path: str, query_string: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    from evi360.errors import ASGIHandler

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await ASGIHandler()(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


@pytest.mark.parametrize(
    "path, shape",
    [("/api/v1/stream/sessions/", {"code", "message"}), ("/v1/models", {"message", "type", "param", "code"})],
)
async def test_a_query_string_that_is_not_utf8_is_json_in_the_family_shape(path, shape):
    # Django's ASGI handler answers this before any middleware or view: an empty text/html 400.
    status, headers, body = await _asgi(path, b"page=%ff\xff")
    assert status == 400
    assert headers[b"Content-Type"].startswith(b"application/json")
    assert set(json.loads(body)["error"]) == shape


async def test_a_query_string_that_is_not_utf8_elsewhere_stays_djangos():
    status, headers, _body = await _asgi("/accounts/login/", b"next=\xff")
    assert status == 400
    assert headers[b"Content-Type"].startswith(b"text/html")
