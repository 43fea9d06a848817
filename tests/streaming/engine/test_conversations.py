"""Conversations with memory: follow-ups see the earlier completed turns; retrieval uses the
previous question too; the history budget; cancelled and failed turns are not replayed."""

from __future__ import annotations

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from citations import embeddings, query_vectors
from streaming.engine import agent, opening
from streaming.models import Conversation, StreamSession
from tests.conftest import log_session, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/stream/query"


@pytest.fixture
def seen(monkeypatch):
    """What the agent was asked: the history it got and what retrieval searched for."""
    calls = []
    original, original_retrieve = agent.answer, opening.retrieve

    searched: list[tuple[str, object]] = []

    def retrieve_spy(query, language, k=5, **kwargs):  # at the start, before the agent is called
        searched.append((query, kwargs.get("vector")))
        return original_retrieve(query, language, k, **kwargs)

    def spy(query, language, **kwargs):
        text, vector = searched.pop()
        calls.append(
            {"query": query, "history": list(kwargs.get("history", ())), "searched": text, "vector": vector}
        )
        return original(query, language, **kwargs)

    monkeypatch.setattr(agent, "answer", spy)
    monkeypatch.setattr(opening, "retrieve", retrieve_spy)
    return calls


async def ask(async_client, token, query, conversation_id=None):
    body = {"query": query, **({"conversation_id": conversation_id} if conversation_id else {})}
    response = await async_client.post(
        URL, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.content
    events = parse_sse(b"".join([c async for c in response.streaming_content]))
    return events[0][2]["conversation_id"], events


async def test_a_follow_up_gets_the_earlier_turns_and_searches_with_the_previous_question(
    small_kb, user, access_token, async_client, scripted_model, seen
):
    token = access_token(user)
    scripted_model(["Maximaal 23 kg [1]."])
    conversation, _ = await ask(async_client, token, "Hoe zwaar mag ik tillen?")
    scripted_model(["Voor zwangere werknemers minder."])
    assert (await ask(async_client, token, "En voor zwangere werknemers?", conversation))[0] == conversation
    first, follow_up = seen
    assert first["history"] == [] and first["searched"] == "Hoe zwaar mag ik tillen?"
    assert follow_up["history"] == [("Hoe zwaar mag ik tillen?", "Maximaal 23 kg [1].")]
    assert follow_up["searched"] == "Hoe zwaar mag ik tillen? En voor zwangere werknemers?"
    # Its vector is its own and the previous question's together (that one from the cache).
    model = embeddings.get_embedder().model
    previous, own = model.encode(["Hoe zwaar mag ik tillen?", "En voor zwangere werknemers?"])
    assert np.allclose(first["vector"], previous, atol=1e-5)
    assert np.allclose(follow_up["vector"], query_vectors.follow_up(own, previous), atol=1e-5)
    saved = await Conversation.objects.aget(pk=conversation)
    assert saved.title == "Hoe zwaar mag ik tillen?"
    assert await StreamSession.objects.filter(conversation_id=conversation).acount() == 2


async def test_the_history_budget_keeps_the_newest_turns(
    small_kb, user, access_token, async_client, scripted_model, seen, settings
):
    settings.EVI360_HISTORY_TURNS = 2
    token = access_token(user)
    conversation = None
    for n in range(4):
        scripted_model([f"antwoord {n}"])
        conversation, _ = await ask(async_client, token, f"vraag {n} over tillen", conversation)
    assert seen[-1]["history"] == [
        ("vraag 1 over tillen", "antwoord 1"),
        ("vraag 2 over tillen", "antwoord 2"),
    ]


async def test_cancelled_and_failed_turns_are_not_replayed(
    small_kb, user, access_token, async_client, scripted_model, seen
):
    token = access_token(user)
    scripted_model(["eerste antwoord"])
    conversation, _ = await ask(async_client, token, "eerste vraag over tillen")
    saved = await Conversation.objects.aget(pk=conversation)
    for status in ("cancelled", "error", "timeout", "interrupted", "streaming"):
        await sync_to_async(log_session)(
            user, conversation=saved, status=status, query=f"{status}?", answer="half"
        )
    await ask(async_client, token, "volgende vraag", conversation)
    assert seen[-1]["history"] == [("eerste vraag over tillen", "eerste antwoord")]
