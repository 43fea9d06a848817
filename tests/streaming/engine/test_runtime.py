"""streaming/engine/runtime.py: the process's engine state in one object; outcome writes that
run on their own, and what the drain waits for."""

from __future__ import annotations

import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from streaming.engine import shutdown
from streaming.engine.request import StreamRequest
from streaming.engine.runtime import RUNTIME, Runtime
from streaming.models import Status, StreamSession
from streaming.store import writes
from tests.conftest import new_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fresh_runtime_state(monkeypatch):
    monkeypatch.setattr(RUNTIME, "draining", False)
    monkeypatch.setattr(RUNTIME, "interrupted", set())


def test_each_runtime_has_state_of_its_own():
    one, other = Runtime(), Runtime()
    one.draining = True
    one.interrupted.add("s")
    assert (other.draining, other.interrupted) == (False, set())
    assert one.starts is not other.starts and one.outcomes is not other.outcomes


async def test_a_session_that_never_started_is_recorded_cancelled(user):
    session = await new_session(user)
    RUNTIME.record_unstarted(StreamRequest(session=session))
    async with asyncio.timeout(10):
        await RUNTIME.settled()
    row = await sync_to_async(StreamSession.objects.get)(pk=session.pk)
    assert (row.status, row.error_code, row.error_message) == (
        Status.CANCELLED,
        "cancelled",
        "The client went away.",
    )
    assert row.finished_at is not None


async def test_an_outcome_the_database_never_takes_is_given_up_with_an_error(user, monkeypatch, caplog):
    attempts = []

    def refuse(*args):
        attempts.append(args)
        raise OperationalError("the database is away")

    monkeypatch.setattr(writes, "record_outcomes", refuse)
    monkeypatch.setattr(writes, "record_outcome", refuse)
    monkeypatch.setattr(RUNTIME, "retry_delays", (0, 0))
    session = await new_session(user)
    RUNTIME.record_unstarted(StreamRequest(session=session))
    async with asyncio.timeout(10):
        await RUNTIME.settled()
    assert len(attempts) == 3  # the batch, then one per retry
    [lost] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert lost.getMessage() == f"stream {session.id}: outcome cancelled lost: the database stayed away"
    row = await sync_to_async(StreamSession.objects.get)(pk=session.pk)
    assert row.status == Status.STREAMING


async def test_the_drain_waits_for_the_background_writes(fresh_runtime_state):
    written = asyncio.Event()

    async def write() -> None:
        await asyncio.sleep(0.05)
        written.set()

    RUNTIME.track(write(), "s")
    assert await shutdown.drain(grace=0) == 0
    assert written.is_set() and not RUNTIME.background
    assert RUNTIME.draining
