"""POST /api/v1/stream/query: every refusal before the stream, and the stream itself."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from rest_framework_simplejwt.tokens import AccessToken

from streaming.models import ClientKind, Status, StreamSession
from tests.conftest import log_session, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/stream/query"


async def post(async_client, body, *, token=None, content_type="application/json", **extra):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await async_client.post(URL, body, content_type=content_type, headers=headers, **extra)


async def read(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body


async def test_streams_the_answer_with_the_right_headers(
    small_kb, user, access_token, async_client, scripted_model
):
    scripted_model(["Til ", "max 23 kg [1]", "."])
    response = await post(async_client, {"query": "Hoe zwaar mag ik tillen?"}, token=access_token(user))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    assert not response.has_header("Content-Encoding")
    body = await read(response)
    assert body.startswith(b"retry: 3000\n\n")
    events = parse_sse(body)
    assert [e[1] for e in events] == ["session", "token", "citation", "token", "token", "done"]
    session = await StreamSession.objects.aget(pk=events[0][2]["session_id"])
    assert (session.status, session.client_kind, session.language) == (Status.COMPLETED, ClientKind.API, "nl")
    assert session.answer == "Til max 23 kg [1]."


async def test_explicit_language_and_conversation_id_are_kept(
    small_kb, user, access_token, async_client, scripted_model
):
    first = parse_sse(
        await read(await post(async_client, {"query": "Hoe zwaar mag ik tillen?"}, token=access_token(user)))
    )
    conversation = first[0][2]["conversation_id"]
    assert conversation  # a new conversation for a question without one
    response = await post(
        async_client,
        {"query": "En voor zwangere werknemers?", "language": "en", "conversation_id": conversation},
        token=access_token(user),
    )
    session_event = parse_sse(await read(response))[0][2]
    assert session_event["language"] == "en" and session_event["conversation_id"] == conversation


async def test_an_unknown_or_foreign_conversation_is_404(
    small_kb, user, django_user_model, access_token, async_client, scripted_model
):
    other = await django_user_model.objects.acreate_user("other", password="a-long-pass-123")
    theirs = parse_sse(await read(await post(async_client, {"query": "tillen"}, token=access_token(other))))
    for conversation in ("8d1f3f0e-64a4-4a4e-9d5e-1f5c3a1b2c3d", theirs[0][2]["conversation_id"]):
        response = await post(
            async_client, {"query": "x", "conversation_id": conversation}, token=access_token(user)
        )
        assert_error(response, 404, "conversation_not_found")


async def test_language_is_detected_when_auto(small_kb, user, access_token, async_client, scripted_model):
    response = await post(
        async_client, {"query": "What is the noise limit?", "language": "auto"}, token=access_token(user)
    )
    assert parse_sse(await read(response))[0][2]["language"] == "en"


async def test_no_credentials_is_401(async_client):
    response = await post(async_client, {"query": "x"})
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer not-a-jwt", "Basic ZGVtbzpkZW1v"])
async def test_a_bad_authorization_header_is_401(async_client, header):
    response = await async_client.post(
        URL, {"query": "x"}, content_type="application/json", headers={"Authorization": header}
    )
    assert_error(response, 401, "not_authenticated")


async def test_expired_token_is_401(user, async_client):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    assert_error(await post(async_client, {"query": "x"}, token=str(token)), 401, "not_authenticated")


async def test_inactive_user_is_401(user, access_token, async_client):
    token = access_token(user)
    user.is_active = False
    await user.asave()
    response = await post(async_client, {"query": "x"}, token=token)
    assert_error(response, 401, "not_authenticated")
    assert response.json()["error"]["message"] == "User is inactive"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not await StreamSession.objects.aexists()


async def test_a_valid_token_of_a_deleted_user_is_401_and_starts_nothing(user, access_token, async_client):
    token = access_token(user)
    await user.adelete()
    response = await post(async_client, {"query": "Hoe zwaar mag ik tillen?"}, token=token)
    assert_error(response, 401, "not_authenticated")
    assert response.json()["error"]["message"] == "User not found"
    assert not await StreamSession.objects.aexists()


async def test_get_is_405(async_client):
    response = await async_client.get(URL)
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


async def test_not_json_is_415(user, access_token, async_client):
    response = await post(
        async_client, "query=x", token=access_token(user), content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('"just a string"', "invalid_json"),
        ({}, "invalid_query"),
        ({"query": ""}, "invalid_query"),
        ({"query": "   \n\t "}, "invalid_query"),
        ({"query": "\x1c\u2028 "}, "invalid_query"),
        ({"query": "til\x00len"}, "invalid_query"),
        ({"query": 42}, "invalid_query"),
        ({"query": "x" * 4001}, "query_too_long"),
        # The schema's maxLength counts what is sent, surrounding whitespace included.
        ({"query": "\x85" + "x" * 4000}, "query_too_long"),
        ({"query": "x" * 4000 + " "}, "query_too_long"),
        ({"query": "x", "language": "de"}, "invalid_language"),
        ({"query": "x", "language": 1}, "invalid_language"),
        ({"query": "x", "conversation_id": "not-a-uuid"}, "invalid_conversation_id"),
        ({"query": "x", "conversation_id": 12}, "invalid_conversation_id"),
    ],
)
async def test_bad_input_is_400(user, access_token, async_client, body, code):
    assert_error(await post(async_client, body, token=access_token(user)), 400, code)
    assert await StreamSession.objects.acount() == 0


async def test_the_longest_allowed_query_is_accepted(
    small_kb, user, access_token, async_client, scripted_model
):
    response = await post(async_client, {"query": "tillen " * 571 + "abc"}, token=access_token(user))
    assert response.status_code == 200
    await read(response)


async def test_session_callers_need_csrf(small_kb, user, scripted_model):
    from django.test import AsyncClient

    client = AsyncClient(enforce_csrf_checks=True)
    await sync_to_async(client.force_login)(user)
    response = await client.post(URL, {"query": "tillen"}, content_type="application/json")
    assert_error(response, 403, "csrf_failed")

    await client.get("/accounts/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = await client.post(
        URL, {"query": "tillen"}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200
    events = parse_sse(await read(response))
    session = await StreamSession.objects.aget(pk=events[0][2]["session_id"])
    assert session.client_kind == ClientKind.WEB


async def test_rate_limit_is_429_with_retry_after(
    small_kb, user, access_token, async_client, scripted_model, settings
):
    settings.EVI360_RATE_LIMIT = "2/m"
    token = access_token(user)
    for _ in range(2):
        await read(await post(async_client, {"query": "tillen"}, token=token))
    response = await post(async_client, {"query": "tillen"}, token=token)
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60


async def test_rate_limit_counts_per_user(
    small_kb, user, django_user_model, access_token, async_client, scripted_model, settings
):
    settings.EVI360_RATE_LIMIT = "1/m"
    other = await django_user_model.objects.acreate_user("other", password="a-long-pass-123")
    await read(await post(async_client, {"query": "tillen"}, token=access_token(user)))
    response = await post(async_client, {"query": "tillen"}, token=access_token(other))
    assert response.status_code == 200
    await read(response)


async def test_too_many_concurrent_streams_is_503(
    small_kb, user, access_token, async_client, scripted_model, settings
):
    settings.EVI360_MAX_CONCURRENT_STREAMS = 2
    for _ in range(2):
        await sync_to_async(log_session)(user, status="streaming")
    response = await post(async_client, {"query": "tillen"}, token=access_token(user))
    assert_error(response, 503, "too_many_streams")
    assert response["Retry-After"]


async def test_streams_left_by_a_dead_process_do_not_count(
    small_kb, user, access_token, async_client, scripted_model, settings
):
    settings.EVI360_MAX_CONCURRENT_STREAMS = 1
    await sync_to_async(log_session)(user, minutes_ago=60, status="streaming")
    response = await post(async_client, {"query": "tillen"}, token=access_token(user))
    assert response.status_code == 200
    await read(response)


async def test_unknown_api_path_is_json_404(async_client):
    assert_error(await async_client.get("/api/v1/nope"), 404, "not_found")
    # any method, also one that Django's CSRF check would otherwise refuse first with HTML
    assert_error(await async_client.delete("/api/v1/stream/sessions/not-a-uuid"), 404, "not_found")


async def test_keep_alive_comments_while_the_model_is_silent(
    small_kb, user, access_token, async_client, scripted_model, settings
):
    settings.EVI360_SSE_KEEPALIVE = 0.05
    scripted_model(["Eerst ", "na een stilte."], before=lambda: asyncio.sleep(0.3))
    response = await post(async_client, {"query": "tillen"}, token=access_token(user))
    body = await read(response)
    assert b": keep-alive\n\n" in body
    assert parse_sse(body)[-1][1] == "done"


async def test_accept_json_returns_the_finished_answer(
    small_kb, user, access_token, async_client, scripted_model
):
    scripted_model(["Til ", "max 23 kg [1]", "."])
    response = await async_client.post(
        URL,
        {"query": "Hoe zwaar mag ik tillen?"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {access_token(user)}", "Accept": "application/json"},
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["answer"] == "Til max 23 kg [1]." and body["status"] == "completed"
    assert body["citations"][0]["marker"] == 1 and body["citations"][0]["source"]["title"] == "Tillen"
    assert set(body["usage"]) == {"input_tokens", "output_tokens"} and body["conversation_id"]
    session = await StreamSession.objects.aget(pk=body["session_id"])
    assert session.status == Status.COMPLETED and session.answer == body["answer"]


async def test_accept_json_reports_an_upstream_failure(
    small_kb, user, access_token, async_client, scripted_model
):
    from pydantic_ai.exceptions import ModelHTTPError

    scripted_model(["half"], error=ModelHTTPError(529, "m"))
    response = await async_client.post(
        URL,
        {"query": "tillen"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {access_token(user)}", "Accept": "application/json"},
    )
    assert_error(response, 503, "upstream_unavailable")


async def test_an_english_question_is_answered_from_the_dutch_guideline(
    corpus, user, access_token, async_client
):
    """The issue's own example, with the offline model: sources from the Dutch guideline, an
    English answer that cites them and quotes the rule."""
    response = await async_client.post(
        URL,
        {"query": "How many night shifts in a row are allowed?"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {access_token(user)}"},
    )
    events = parse_sse(b"".join([chunk async for chunk in response.streaming_content]))
    assert events[0][2]["language"] == "en"
    citations = [e[2] for e in events if e[1] == "citation"]
    assert citations and all(c["source"]["title"] == "Arbeidstijden en nachtwerk" for c in citations)
    answer = "".join(e[2]["text"] for e in events if e[1] == "token")
    assert answer.startswith("This is what the knowledge base says")
    assert "maximaal 7 nachtdiensten achter elkaar [1]" in answer and "(source in Dutch)" in answer


@pytest.mark.parametrize("query", ["🦺🔥👷", "Hoe zwaar mag ik tillen? " * 160, "?", "ø"])
async def test_odd_questions_are_answered_through_hybrid_retrieval(
    corpus, user, access_token, async_client, query
):
    query = query[:4000]
    response = await async_client.post(
        URL,
        {"query": query},
        content_type="application/json",
        headers={"Authorization": f"Bearer {access_token(user)}"},
    )
    assert response.status_code == 200
    events = parse_sse(b"".join([chunk async for chunk in response.streaming_content]))
    assert events[-1][1] == "done"
