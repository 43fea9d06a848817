"""CORS (django-cors-headers) with EVI360_CORS_ORIGINS set: preflights of /api/ and /v1/ from an
allowed origin are answered before any view (not the views' 405), other origins get no
Access-Control-Allow-Origin, the actual responses (streams included, still unbuffered) carry it,
and nothing outside /api/ and /v1/ gets CORS headers. Unset, everything is as without CORS."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from streaming.models import ApiKey

pytestmark = pytest.mark.django_db(transaction=True)

APP = "https://app.example"
OTHER = "https://evil.example"
CORS = "corsheaders.middleware.CorsMiddleware"
PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}
API_POSTS = ["/api/v1/chat", "/v1/chat/completions", "/api/v1/auth/token/"]


@pytest.fixture
def cors(settings):
    """What EVI360_CORS_ORIGINS=https://app.example sets (tests/test_settings.py checks that)."""
    settings.CORS_ALLOWED_ORIGINS = [APP]
    settings.MIDDLEWARE = [CORS, *settings.MIDDLEWARE]


@pytest.fixture
def bearer(user, access_token):
    return {"Authorization": f"Bearer {access_token(user)}"}


def chat_body(chat_id: str = "corsChat00000001") -> str:
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hoe zwaar mag ik tillen?"}]}
    return json.dumps({"id": chat_id, "messages": [message], "trigger": "submit-message", "messageId": None})


def access_control(response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


def header_list(response, name: str) -> set[str]:
    return {item.strip().lower() for item in response.get(name, "").split(",") if item.strip()}


@pytest.mark.parametrize("url", API_POSTS)
async def test_a_preflight_from_an_allowed_origin_is_answered_before_the_view(cors, async_client, url):
    response = await async_client.options(url, headers=PREFLIGHT)
    assert response.status_code == 200  # not the view's 405 for OPTIONS
    assert response["Access-Control-Allow-Origin"] == APP
    assert {"authorization", "content-type"} <= header_list(response, "Access-Control-Allow-Headers")
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response  # bearer tokens and API keys, no cookies
    assert "origin" in header_list(response, "Vary")


@pytest.mark.parametrize("url", API_POSTS)
async def test_a_preflight_from_another_origin_gets_no_allow_origin(cors, async_client, url):
    response = await async_client.options(url, headers={**PREFLIGHT, "Origin": OTHER})
    assert access_control(response) == []  # the browser refuses the request
    # An origin that differs only in scheme or port is another origin.
    for near in ("http://app.example", "https://app.example:8443"):
        near_miss = await async_client.options(url, headers={**PREFLIGHT, "Origin": near})
        assert access_control(near_miss) == []


async def test_without_cors_origins_a_preflight_is_the_views_405(async_client):
    response = await async_client.options("/api/v1/chat", headers=PREFLIGHT)
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert access_control(response) == []


async def test_the_streamed_chat_answer_carries_the_headers_and_streams_unbuffered(
    cors, small_kb, async_client, bearer, scripted_model
):
    gate = asyncio.Event()
    scripted_model(["Til ", "max 23 kg [1]", "."], before=gate.wait)
    response = await async_client.post(
        "/api/v1/chat", chat_body(), content_type="application/json", headers={**bearer, "Origin": APP}
    )
    assert response.status_code == 200 and response.streaming
    assert response["Access-Control-Allow-Origin"] == APP
    exposed = header_list(response, "Access-Control-Expose-Headers")
    assert {"x-vercel-ai-ui-message-stream", "retry-after"} <= exposed
    assert "Content-Encoding" not in response and response["X-Accel-Buffering"] == "no"
    # The first chunks arrive while the model still holds back its last delta: nothing buffers.
    reading = response.streaming_content.__aiter__()
    seen = ""
    while '"type":"text-delta"' not in seen:
        seen += (await reading.__anext__()).decode()
    gate.set()
    rest = b"".join([chunk async for chunk in reading]).decode()
    assert rest.rstrip().endswith("data: [DONE]")


async def test_openai_chat_completions_and_its_errors_carry_the_allow_origin(
    cors, small_kb, async_client, user
):
    _key, raw = await sync_to_async(ApiKey.issue)(user, "tests")
    body = {"model": "evi-specialist", "messages": [{"role": "user", "content": "Hoe zwaar mag ik tillen?"}]}
    headers = {"Authorization": f"Bearer {raw}", "Origin": APP}
    streamed = await async_client.post(
        "/v1/chat/completions",
        json.dumps({**body, "stream": True}),
        content_type="application/json",
        headers=headers,
    )
    assert streamed.status_code == 200 and streamed.streaming
    assert streamed["Access-Control-Allow-Origin"] == APP and "Content-Encoding" not in streamed
    assert b"".join([chunk async for chunk in streamed.streaming_content]).rstrip().endswith(b"data: [DONE]")
    # A refusal is readable by the web app too (otherwise the browser hides its JSON).
    refused = await async_client.post(
        "/v1/chat/completions", json.dumps(body), content_type="application/json", headers={"Origin": APP}
    )
    assert refused.status_code == 401 and refused["Access-Control-Allow-Origin"] == APP


def test_the_token_endpoint_answers_an_allowed_origin(cors, client, user):
    credentials = json.dumps({"username": "specialist", "password": "a-long-pass-123"})
    response = client.post(
        "/api/v1/auth/token/", credentials, content_type="application/json", headers={"Origin": APP}
    )
    assert response.status_code == 200 and "access" in response.json()
    assert response["Access-Control-Allow-Origin"] == APP
    other = client.post(
        "/api/v1/auth/token/", credentials, content_type="application/json", headers={"Origin": OTHER}
    )
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/metrics", "/static/vendor/manifest.json"])
def test_nothing_outside_the_api_gets_cors_headers(cors, client, url):
    for response in (
        client.get(url, headers={"Origin": APP}),
        client.options(url, headers=PREFLIGHT),
    ):
        assert access_control(response) == [], url
