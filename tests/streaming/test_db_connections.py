"""Open streams hold no database connection while they wait on the model: the process holds at
most EVI360_DB_THREADS connections, however many streams are open."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from tests.conftest import parse_sse

pytestmark = pytest.mark.django_db(transaction=True)
STREAMS = 12


def open_connections() -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]
    raise AssertionError("PostgreSQL only")


async def test_streams_waiting_on_the_model_hold_no_connection(
    small_kb, django_user_model, access_token, async_client, scripted_model, settings
):
    if connection.vendor != "postgresql":
        pytest.skip("counts server connections: PostgreSQL only")
    settings.EVI360_MAX_CONCURRENT_STREAMS = STREAMS
    gate = asyncio.Event()
    scripted_model(["Eerst ", "dan de rest."], before=gate.wait)
    user = await django_user_model.objects.acreate_user("many", password="a-long-pass-123")
    headers = {"Authorization": f"Bearer {access_token(user)}"}
    before = await sync_to_async(open_connections)()

    responses = [
        await async_client.post(
            "/api/v1/stream/query", {"query": "tillen"}, content_type="application/json", headers=headers
        )
        for _ in range(STREAMS)
    ]
    readers = [response.streaming_content.__aiter__() for response in responses]
    for reader in readers:  # every stream is open and has sent its first token
        while b"event: token" not in await anext(reader):
            pass
    during = await sync_to_async(open_connections)()
    gate.set()
    for reader in readers:
        rest = b"".join([chunk async for chunk in reader])
        assert parse_sse(rest)[-1][1] == "done"

    # The test's own sync_to_async thread holds one; close it so the test database can be dropped.
    await sync_to_async(connections.close_all)()
    assert during - before <= settings.EVI360_DB_THREADS < STREAMS, (
        f"{during - before} connections for {STREAMS} streams"
    )
