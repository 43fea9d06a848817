"""evi360/startup.py: the process's start-up steps, in order, and the ones that must not stop it."""

from __future__ import annotations

import logging

import pytest
from django.db import DatabaseError

from evi360 import startup
from streaming.models import Status
from tests.conftest import log_session


def test_the_steps_run_in_order_and_the_heap_is_frozen_last(monkeypatch):
    assert [step.__name__ for step in startup.STEPS] == [
        "warm_up_language_models",
        "check_embeddings",
        "warm_up_agent",
        "mark_interrupted_streams",
        "load_passage_vectors",
        "resume_uploads",
        "freeze_the_heap",
    ]
    ran: list[str] = []
    monkeypatch.setattr(startup, "STEPS", (lambda: ran.append("a"), lambda: ran.append("b")))
    startup.start()
    assert ran == ["a", "b"]


@pytest.mark.django_db
def test_stale_sessions_are_marked_interrupted_and_said_so(user, settings, caplog, monkeypatch):
    # The step closes its connections; the test's own (in a transaction) must stay open.
    monkeypatch.setattr(startup.connections, "close_all", lambda: None)
    settings.EVI360_STREAM_TIMEOUT = 60
    settings.EVI360_INTERRUPTED_MARGIN = 60
    dead = log_session(user, minutes_ago=5, status=Status.STREAMING)
    live = log_session(user, minutes_ago=1, status=Status.STREAMING)
    with caplog.at_level(logging.WARNING, logger="evi360.startup"):
        startup.mark_interrupted_streams()
    dead.refresh_from_db()
    live.refresh_from_db()
    assert (dead.status, live.status) == (Status.INTERRUPTED, Status.STREAMING)
    assert "1 interrupted stream session(s) marked" in caplog.text


def test_a_database_not_ready_does_not_stop_the_start(monkeypatch, caplog):
    def fail():
        raise DatabaseError("no such table: streaming_streamsession")

    monkeypatch.setattr(startup, "mark_interrupted", fail)
    monkeypatch.setattr(startup.embeddings, "enabled", lambda: True)
    monkeypatch.setattr(startup.INDEX, "current", fail)
    with caplog.at_level(logging.WARNING, logger="evi360.startup"):
        startup.mark_interrupted_streams()
        startup.load_passage_vectors()
    assert "could not mark interrupted streams: no such table" in caplog.text
    assert "could not load the passage vectors yet: no such table" in caplog.text


def test_no_passage_vectors_are_read_without_embeddings(monkeypatch):
    monkeypatch.setattr(startup.embeddings, "enabled", lambda: False)
    monkeypatch.setattr(startup.INDEX, "current", lambda: pytest.fail("read the vectors"))
    startup.load_passage_vectors()


def test_a_failed_agent_warm_up_is_logged_not_raised(monkeypatch, caplog):
    def fail():
        raise RuntimeError("no price table")

    monkeypatch.setattr(startup.agent, "warm_up", fail)
    with caplog.at_level(logging.ERROR, logger="evi360.startup"):
        startup.warm_up_agent()
    assert "the agent's warm-up run failed" in caplog.text and "no price table" in caplog.text


@pytest.mark.django_db
def test_waiting_uploads_start_the_worker_thread(settings, monkeypatch):
    from citations.models import Upload

    monkeypatch.setattr(startup.connections, "close_all", lambda: None)
    kicked: list[bool] = []
    monkeypatch.setattr(startup.uploads, "kick", lambda: kicked.append(True))
    settings.EVI360_UPLOAD_WORKER = "thread"
    startup.resume_uploads()
    assert kicked == []  # nothing waits
    Upload.objects.create(name="a.md", content=b"# A\n\ntekst")
    settings.EVI360_UPLOAD_WORKER = "command"
    startup.resume_uploads()
    assert kicked == []  # manage.py process_uploads does it
    settings.EVI360_UPLOAD_WORKER = "thread"
    startup.resume_uploads()
    assert kicked == [True]
