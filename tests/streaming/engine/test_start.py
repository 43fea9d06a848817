"""streaming/engine/start.py and opening.py: a stream's start makes one trip to a database thread
(rate limit, session row, history, sources), group-committed with the starts that arrive
meanwhile; a retrieval that fails there is retried by the generation; a client that leaves
meanwhile is recorded cancelled."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from evi360 import db
from streaming.api import streams as api
from streaming.engine import opening
from streaming.engine.runtime import RUNTIME
from streaming.models import StreamSession
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
    real = db.run_db

    async def counting(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips.append(fn.__name__)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(db, "run_db", counting)  # starts and outcomes (db.Batch)
    monkeypatch.setattr(api, "run_db", counting)  # anything else the view would read
    scripted_model(["Til maximaal 23 kg [1]."])
    events = await ask(async_client, token)
    # The JWT's user is read in the start's own trip, not in one of its own before it.
    assert trips == ["open_starts", "_write_outcomes"]
    assert [e[1] for e in events] == ["session", "citation", "token", "done"]


async def test_in_a_burst_a_refused_users_start_fails_alone(
    small_kb, user, django_user_model, access_token, async_client, scripted_model
):
    import asyncio

    gone = await django_user_model.objects.acreate_user("gone", password="a-long-pass-123")
    tokens = [access_token(user), access_token(gone), access_token(user)]
    await gone.adelete()
    scripted_model(["Til maximaal 23 kg [1]."])

    async def post(token):  # type: ignore[no-untyped-def]
        return await async_client.post(
            URL,
            {"query": "Hoe zwaar mag ik tillen?"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    responses = await asyncio.gather(*(post(token) for token in tokens))
    assert [r.status_code for r in responses] == [200, 401, 200]
    assert responses[1].json()["error"] == {"code": "not_authenticated", "message": "User not found"}
    for response in (responses[0], responses[2]):
        assert parse_sse(b"".join([c async for c in response.streaming_content]))[-1][1] == "done"
    sessions = [s async for s in StreamSession.objects.all()]
    assert len(sessions) == 2 and {s.user_id for s in sessions} == {user.pk}


async def test_retrieval_failing_at_the_start_is_left_to_the_generation(
    small_kb, user, access_token, async_client, scripted_model, monkeypatch
):
    token = access_token(user)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("database is locked")

    monkeypatch.setattr(opening, "retrieve", broken)
    scripted_model(["Til maximaal 23 kg [1]."])
    events = await ask(async_client, token)
    citation = next(e for e in events if e[1] == "citation")
    assert citation[2]["source"]["title"]  # the agent retrieved them itself
    assert events[-1][1] == "done"


async def test_a_session_row_written_for_a_client_that_went_away_is_recorded_cancelled(
    small_kb, user, access_token, async_client, scripted_model, monkeypatch
):
    """The client disconnects while its start is in the database: no row is left 'streaming'."""
    import asyncio
    import threading

    from asgiref.sync import sync_to_async

    from streaming.models import Status, StreamSession

    entered, release = threading.Event(), threading.Event()
    real = opening.open_starts

    def slow_open(starts, settle):  # type: ignore[no-untyped-def]
        results = [None] * len(starts)  # held back, and handed over only at the end

        def hold(index, result):  # type: ignore[no-untyped-def]
            results[index] = result

        real(starts, hold)
        entered.set()
        release.wait(5)
        return results

    monkeypatch.setattr(RUNTIME.starts, "_fn", slow_open)
    scripted_model(["Til maximaal 23 kg [1]."])
    request = asyncio.ensure_future(ask(async_client, access_token(user)))
    await asyncio.to_thread(entered.wait, 5)
    request.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await request
    release.clear()  # (the next start goes through at once)
    entered.clear()
    monkeypatch.setattr(RUNTIME.starts, "_fn", real)
    # The next start runs after the first batch was handled, the cancelled caller's row included.
    assert (await ask(async_client, access_token(user)))[-1][1] == "done"
    async with asyncio.timeout(10):
        await RUNTIME.settled()
    statuses = await sync_to_async(list)(StreamSession.objects.values_list("status", "error_code"))
    assert sorted(statuses) == [(Status.CANCELLED, "cancelled"), (Status.COMPLETED, "")]


async def test_the_question_is_embedded_while_the_start_is_in_the_database(
    small_kb, user, access_token, async_client, scripted_model, monkeypatch
):
    """The embedding is asked for before the database trip begins, and the trip uses it."""
    from citations.query_vectors import VECTORS

    order: list[str] = []
    request, open_ = VECTORS.request, opening.open_starts
    retrieve = opening.retrieve
    seen_vectors = []

    def requesting(text):
        order.append("embedding asked")
        return request(text)

    def opening_(starts, settle):
        order.append("database trip")
        return open_(starts, settle)

    def retrieving(query, language, k=5, **kwargs):
        seen_vectors.append(kwargs.get("vector"))
        return retrieve(query, language, k, **kwargs)

    monkeypatch.setattr(VECTORS, "request", requesting)
    monkeypatch.setattr(RUNTIME.starts, "_fn", opening_)
    monkeypatch.setattr(opening, "retrieve", retrieving)
    scripted_model(["Til maximaal 23 kg [1]."])
    await ask(async_client, access_token(user))
    assert order == ["embedding asked", "database trip"]
    [vector] = seen_vectors
    assert vector is not None and vector.shape == (512,)


async def test_a_failing_embedding_answers_from_full_text_search(
    small_kb, user, access_token, async_client, scripted_model, monkeypatch, dense_state
):
    from prometheus_client import REGISTRY

    from citations import embeddings

    def fail(texts):
        raise RuntimeError("no vectors today")

    monkeypatch.setattr(embeddings.in_process_model(), "encode", fail)
    before = REGISTRY.get_sample_value("evi360_retrieval_fallbacks_total", {"reason": "error"}) or 0
    scripted_model(["Til maximaal 23 kg [1]."])
    events = await ask(async_client, access_token(user))
    assert [e[1] for e in events] == ["session", "citation", "token", "done"]
    assert events[1][2]["source"]["title"] == "Tillen"
    after = REGISTRY.get_sample_value("evi360_retrieval_fallbacks_total", {"reason": "error"})
    assert after == before + 1


async def test_a_question_full_text_search_answers_alone_is_not_embedded(
    small_kb, user, access_token, async_client, scripted_model, monkeypatch, dense_state
):
    from citations import embeddings

    encoded = []
    model = embeddings.in_process_model()
    original = model.encode
    monkeypatch.setattr(model, "encode", lambda texts: (encoded.append(list(texts)), original(texts))[1])
    scripted_model(["Neem een pauze [1]."])
    for query in ("beeldschermwerk pauze", "Mag ik na twee uur achter de computer even rusten?"):
        response = await async_client.post(
            URL,
            {"query": query, "language": "nl"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {access_token(user)}"},
        )
        events = parse_sse(b"".join([c async for c in response.streaming_content]))
        assert events[-1][1] == "done"
    # Every word of the first is in the passage on screen work; the second needs its vector.
    assert encoded == [["Mag ik na twee uur achter de computer even rusten?"]]


async def test_refused_starts_do_not_use_up_the_rate_limit(
    small_kb, user, access_token, async_client, scripted_model, settings
):
    """A start refused for an unknown conversation or the concurrency cap ran nothing: it must
    not count, or a few refusals would lock the user out for the rate limit's window."""
    import uuid

    from asgiref.sync import sync_to_async

    from tests.conftest import log_session

    settings.EVI360_RATE_LIMIT = "2/m"
    settings.EVI360_MAX_CONCURRENT_STREAMS = 1
    token = access_token(user)

    async def post(body):
        return await async_client.post(
            URL, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
        )

    for _ in range(3):
        response = await post({"query": "tillen", "conversation_id": str(uuid.uuid4())})
        assert response.status_code == 404, response.content
    running = await sync_to_async(log_session)(user, status="streaming")
    for _ in range(3):
        response = await post({"query": "tillen"})
        assert response.status_code == 503, response.content
    await StreamSession.objects.filter(pk=running.pk).aupdate(status="completed")
    scripted_model(["Til maximaal 23 kg [1]."])
    for _ in range(2):  # the limit is still whole
        assert (await ask(async_client, token))[-1][1] == "done"
    response = await post({"query": "tillen"})
    assert response.status_code == 429  # and it still holds


def test_every_start_keeps_typed_events_unless_its_caller_says_otherwise():
    """One default: the endpoints that read only SSE bytes opt out, the others need not say."""
    import inspect

    from streaming.engine import generate as generation
    from streaming.engine.start import begin_stream

    assert generation.KEEP_TYPED is True
    for function in (begin_stream, generation.start):
        assert inspect.signature(function).parameters["keep_typed"].default is generation.KEEP_TYPED
