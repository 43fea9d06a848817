"""A deterministic fuzzer over every route (#18): hostile bodies, query strings, headers and
methods are never a 500; under /api/ and /v1/ every error is JSON in the family's shape; and the
app still answers normally afterwards. Streams are not started (``begin_stream`` is replaced by a
refusal that checks what reached it is storable), so every example is quick."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming import api as streaming_api
from streaming import openai_api
from streaming.models import ApiKey
from streaming.starting import StreamRefused
from tests.conftest import log_session

pytestmark = pytest.mark.django_db(transaction=True)

ROUTES = [
    "/",
    "/settings/keys/",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/nope",
    "/healthz",
    "/api/v1/auth/token/",
    "/api/v1/auth/token/refresh/",
    "/api/v1/auth/logout/",
    "/api/v1/stream/query",
    "/api/v1/stream/sessions/",
    "/api/v1/stream/sessions/{session}",
    "/api/v1/stream/sessions/{session}/events",
    "/api/v1/conversations/",
    "/api/v1/conversations/{session}",
    "/api/schema/",
    "/api/nope",
]
KEYS = [
    "query",
    "language",
    "conversation_id",
    "model",
    "messages",
    "role",
    "content",
    "stream",
    "n",
    "username",
    "password",
    "refresh",
    "tools",
    "stream_options",
    "page",
    "text",
    "type",
]
PARAMS = ["page", "page_size", "since", "until", "status", "last_event_id", "format"]

no_surrogates = st.characters(blacklist_categories=("Cs",))
hostile_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\x00", "\ud800", "\udfff", "9" * 5000, "2024-02-30", "9999-12-31T23:59:59-23:59"]),
    st.integers(0, 20_000).map(lambda n: "x" * n),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=12,
)


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()


bodies = st.one_of(
    json_values.map(_json),
    st.integers(500, 3000).map(lambda depth: ("[" * depth + "]" * depth).encode()),
    st.integers(500, 3000).map(lambda depth: ('{"query":' * depth + "1" + "}" * depth).encode()),
    st.integers(4000, 6000).map(lambda digits: b'{"query": ' + b"9" * digits + b"}"),
    st.binary(max_size=200),
    st.just(b'{"query": "' + b"x" * 70_000 + b'"}'),  # over the fixture's upload limit
)
query_strings = st.dictionaries(
    st.sampled_from(PARAMS),
    st.one_of(st.text(no_surrogates, max_size=20), st.sampled_from(["9" * 5000, "2024-13-45", "0", "-1"])),
    max_size=3,
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
methods = st.sampled_from(["get", "post", "put", "patch", "delete", "options", "head"])
content_types = st.sampled_from(
    ["application/json", "application/json; charset=bogus", "text/plain", "multipart/form-data"]
)


@pytest.fixture
def world(user, access_token, settings, monkeypatch):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # "too large" is cheap to reach
    _key, raw_key = ApiKey.issue(user, "fuzz")
    session = log_session(user)

    async def refuse(request, user, **kwargs):  # what would be stored must be storable
        kwargs["query"].encode("utf-8")
        assert "\x00" not in kwargs["query"]
        raise StreamRefused(429, "rate_limited", "Fuzzing.")

    monkeypatch.setattr(streaming_api, "begin_stream", refuse)
    monkeypatch.setattr(openai_api, "begin_stream", refuse)
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    browser.force_login(user)
    auths = ["", f"Bearer {access_token(user)}", f"Bearer {raw_key}", "Bearer x.y.z", "Basic Zm9vOmJhcg=="]
    return {"session": session, "browser": browser, "auths": auths}


def check(response, path: str) -> None:
    assert response.status_code < 500, (path, response.status_code, response.content[:300])
    if response.status_code < 400 or not path.startswith(("/api/", "/v1/")):
        return
    assert response["Content-Type"].startswith("application/json"), (path, response.content[:300])
    if not response.content:  # HEAD
        return
    error = json.loads(response.content)["error"]
    keys = {"code", "message"} if path.startswith("/api/") else {"message", "type", "param", "code"}
    assert set(error) == keys, (path, error)


@pytest.mark.parametrize("route", ROUTES)
def test_no_route_gives_a_500_or_html(world, route):
    path = route.format(session=world["session"].id)
    plain = Client(raise_request_exception=False)

    @settings(
        max_examples=40,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        method=methods,
        body=bodies,
        params=query_strings,
        auth=st.integers(0, len(world["auths"])),
        last_event_id=header_values,
        content_type=content_types,
    )
    def fuzz(method, body, params, auth, last_event_id, content_type):
        client = world["browser"] if auth == len(world["auths"]) else plain
        headers = {"HTTP_LAST_EVENT_ID": last_event_id}
        if auth < len(world["auths"]):
            headers["HTTP_AUTHORIZATION"] = world["auths"][auth]
        query = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        if method in ("get", "head", "options"):
            response = getattr(client, method)(path, params, **headers)
        else:
            response = getattr(client, method)(path + query, body, content_type=content_type, **headers)
        check(response, path)

    fuzz()
    # Still healthy: the health check and a normal request answer as ever.
    assert plain.get("/healthz").status_code == 200
    fine = plain.get("/api/v1/stream/sessions/", HTTP_AUTHORIZATION=world["auths"][1])
    assert fine.status_code == 200 and fine.json()["count"] == 1
