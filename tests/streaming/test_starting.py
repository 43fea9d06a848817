"""streaming/starting.py: a stream's start makes one trip to a database thread (rate limit,
session row, history, sources), and a retrieval that fails there is retried by the generation."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from streaming import starting
from tests.conftest import parse_sse

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/stream/query"


async def ask(async_client, token) -> list:
    response = await async_client.post(
        URL,
        {"query": "Hoe zwaar mag ik tillen?", "language": "nl"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.content
    return parse_sse(b"".join([c async for c in response.streaming_content]))


async def test_a_start_is_one_database_trip(
    small_kb, user, access_token, async_client, scripted_model, monkeypatch
):
    token = access_token(user)
    trips = []
    real = starting.run_db

    async def counting(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips.append(fn.__name__)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(starting, "run_db", counting)
    scripted_model(["Til maximaal 23 kg [1]."])
    events = await ask(async_client, token)
    assert trips == ["_open"]
    assert [e[1] for e in events] == ["session", "citation", "token", "done"]


async def test_retrieval_failing_at_the_start_is_left_to_the_generation(
    small_kb, user, access_token, async_client, scripted_model, monkeypatch
):
    token = access_token(user)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("database is locked")

    monkeypatch.setattr(starting, "retrieve", broken)
    scripted_model(["Til maximaal 23 kg [1]."])
    events = await ask(async_client, token)
    citation = next(e for e in events if e[1] == "citation")
    assert citation[2]["source"]["title"]  # the agent retrieved them itself
    assert events[-1][1] == "done"
