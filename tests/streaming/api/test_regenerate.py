"""POST /api/v1/stream/query (and /sessions/) with ``regenerate``: the same question answered
again as a new session of the same conversation, with the history the first answer had."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async

from streaming.models import Conversation, Status, StreamSession
from tests.conftest import log_session, parse_sse, streams_finished

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/stream/query"


@pytest.fixture
def seen(monkeypatch):
    """A FunctionModel answering "Antwoord <n>" that keeps the messages of each request."""
    from pydantic_ai.models.function import FunctionModel

    from streaming.engine import agent

    requests: list[list] = []

    async def stream(messages, info):
        requests.append(messages)
        yield f"Antwoord {len(requests)}"

    monkeypatch.setattr(agent, "get_model", lambda: FunctionModel(stream_function=stream, model_name="seen"))
    return requests


def history_of(messages) -> list[tuple[str, str]]:
    """What the model was shown before the question: (kind, text) of every part but the system
    prompt's and the last request's (the question with its sources)."""
    shown = []
    for message in messages[:-1]:
        for part in message.parts:
            if part.part_kind in ("user-prompt", "text"):
                shown.append((part.part_kind, str(part.content)))
    return shown


async def ask(async_client, token, body) -> tuple[int, list]:
    response = await async_client.post(
        URL, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code != 200:
        return response.status_code, response.json()["error"]["code"]
    events = parse_sse(b"".join([c async for c in response.streaming_content]))
    await streams_finished()
    return 200, events


async def conversation_of_two(async_client, token) -> tuple[str, str, str]:
    """(conversation id, first session id, second session id)."""
    _, first = await ask(async_client, token, {"query": "Hoe zwaar mag ik tillen?"})
    conversation = first[0][2]["conversation_id"]
    _, second = await ask(async_client, token, {"query": "En bij hitte?", "conversation_id": conversation})
    return conversation, first[0][2]["session_id"], second[0][2]["session_id"]


async def test_regenerate_is_a_new_session_with_the_same_history(
    small_kb, user, access_token, async_client, seen
):
    token = access_token(user)
    conversation, first, second = await conversation_of_two(async_client, token)
    status, events = await ask(async_client, token, {"regenerate": second})  # `query` left out
    assert status == 200
    new = events[0][2]
    assert new["conversation_id"] == conversation and new["session_id"] not in (first, second)
    assert events[-1][1] == "done"
    # The model saw the same history as the first time: the first turn, not the answer replaced.
    assert history_of(seen[2]) == history_of(seen[1])
    assert ("text", "Antwoord 1") in history_of(seen[2])
    assert "Antwoord 2" not in str(seen[2])
    assert "En bij hitte?" in str(seen[2][-1])
    again = await StreamSession.objects.aget(pk=new["session_id"])
    earlier = await StreamSession.objects.aget(pk=second)
    assert again.regenerates_id == earlier.pk and again.query == "En bij hitte?"
    assert earlier.superseded and earlier.status == Status.COMPLETED  # still in the conversation
    assert await Conversation.objects.acount() == 1
    # The next question's history has the new answer in place of the old one.
    await ask(async_client, token, {"query": "En in de winter?", "conversation_id": conversation})
    assert history_of(seen[3])[-1] == ("text", "Antwoord 3")
    assert "Antwoord 2" not in str(seen[3])


async def test_the_sessions_api_shows_the_link(small_kb, user, access_token, async_client, seen):
    token = access_token(user)
    conversation, _first, second = await conversation_of_two(async_client, token)
    _, events = await ask(async_client, token, {"regenerate": second, "query": "En bij hitte?"})
    headers = {"Authorization": f"Bearer {token}"}
    new = events[0][2]["session_id"]
    detail = (await async_client.get(f"/api/v1/stream/sessions/{new}", headers=headers)).json()
    assert detail["regenerates"] == second
    old = (await async_client.get(f"/api/v1/stream/sessions/{second}", headers=headers)).json()
    assert old["regenerates"] is None
    turns = (await async_client.get(f"/api/v1/conversations/{conversation}", headers=headers)).json()["turns"]
    assert [t["regenerates"] for t in turns] == [None, None, second]
    assert [t["answer"] for t in turns] == ["Antwoord 1", "Antwoord 2", "Antwoord 3"]


async def test_regenerate_from_the_chat_page_endpoint(small_kb, user, async_client, seen):
    await sync_to_async(async_client.force_login)(user)
    conversation = await Conversation.objects.acreate(user=user, title="t")
    earlier = await sync_to_async(log_session)(
        user, 1, conversation=conversation, answer="Oud", client_kind="web"
    )
    response = await async_client.post(
        "/api/v1/stream/sessions/", {"regenerate": str(earlier.pk)}, content_type="application/json"
    )
    assert response.status_code == 201
    created = await StreamSession.objects.aget(pk=response.json()["session_id"])
    assert created.regenerates_id == earlier.pk and created.conversation_id == conversation.pk
    await streams_finished()  # the generation runs on with no reader


async def test_refusals(small_kb, user, access_token, async_client, seen, django_user_model):
    token = access_token(user)
    conversation, first, second = await conversation_of_two(async_client, token)
    other = await django_user_model.objects.acreate_user("other", password="a-long-pass-123")
    theirs = await sync_to_async(log_session)(other, 1)
    elsewhere = await Conversation.objects.acreate(user=user, title="ander gesprek")
    running = await sync_to_async(log_session)(user, 0, conversation=elsewhere, status=Status.STREAMING)
    before = await StreamSession.objects.acount()
    refusals = [
        ({"regenerate": str(theirs.pk)}, 404, "session_not_found"),  # another user's session
        ({"regenerate": str(uuid.uuid4())}, 404, "session_not_found"),
        ({"regenerate": second, "conversation_id": str(elsewhere.pk)}, 404, "session_not_found"),
        ({"regenerate": str(running.pk)}, 409, "session_running"),
        ({"regenerate": second, "query": "Iets anders?"}, 400, "query_mismatch"),
        ({"regenerate": "not-a-uuid"}, 400, "invalid_regenerate"),
        ({}, 400, "invalid_query"),
    ]
    for body, status, code in refusals:
        assert await ask(async_client, token, body) == (status, code), body
    assert await StreamSession.objects.acount() == before  # nothing started
    assert not await StreamSession.objects.filter(superseded=True).aexists()
    # The right conversation given explicitly is fine.
    status, _ = await ask(async_client, token, {"regenerate": first, "conversation_id": conversation})
    assert status == 200


def test_the_admin_session_detail_links_the_regenerated_session(client, user, django_user_model):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("staff", password="a-long-pass-123", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_streamsession"))
    conversation = Conversation.objects.create(user=user, title="t")
    earlier = log_session(user, 2, conversation=conversation, superseded=True)
    again = log_session(user, 1, conversation=conversation, regenerates=earlier)
    client.force_login(staff)
    detail = client.get(f"/admin/streaming/streamsession/{again.pk}/change/").content.decode()
    assert "Regenerates" in detail and f"/admin/streaming/streamsession/{earlier.pk}/change/" in detail
