"""streaming/engine/events.py: the one table of the codes an answer can end with."""

from __future__ import annotations

import asyncio

import pytest
from pydantic_ai.exceptions import ModelHTTPError

from streaming.engine import agent
from streaming.engine.events import ERROR_CODES, ErrorEvent, http_status
from streaming.engine.generate import ending_of
from streaming.eventlog import redis as redis_eventlog
from streaming.models import Status


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("timeout", 504),
        ("upstream_unavailable", 503),
        ("upstream_error", 502),
        ("internal", 500),
        ("cancelled", 500),
        ("interrupted", 500),
        ("stream_unavailable", 500),
        ("not_in_the_table", 500),
    ],
)
def test_http_status_of_each_code(code, status):
    assert http_status(code) == status


def test_the_table_is_keyed_by_its_codes():
    assert all(code == error.code for code, error in ERROR_CODES.items())
    assert set(ERROR_CODES) == {
        "timeout",
        "internal",
        "cancelled",
        "interrupted",
        "stream_unavailable",
        "upstream_unavailable",
        "upstream_error",
    }


def test_an_entrys_event_carries_its_code_message_and_retryability():
    for error in ERROR_CODES.values():
        assert error.event() == ErrorEvent(error.code, error.message, error.retryable)


def test_every_ending_of_a_generation_has_an_entry():
    endings = [
        ending_of(TimeoutError()),
        ending_of(RuntimeError("a bug")),
        ending_of(asyncio.CancelledError()),
        ending_of(asyncio.CancelledError(), interrupted=True),
    ]
    assert [e.error_code for e in endings] == ["timeout", "internal", "cancelled", "interrupted"]
    for ending in endings:
        error = ERROR_CODES[ending.error_code]
        assert ending.status is error.status
        assert ending.event == error.event()
    # A client that went away is recorded as such; the other readers are told more politely.
    assert endings[2].error_message == "The client went away."
    assert endings[2].event.message == "The answer was stopped before it was finished."


@pytest.mark.parametrize(
    ("exc", "code", "retryable"),
    [
        (ModelHTTPError(529, "claude", {"type": "overloaded_error"}), "upstream_unavailable", True),
        (ModelHTTPError(500, "claude"), "upstream_unavailable", True),
        (ModelHTTPError(400, "claude", {"type": "invalid_request_error"}), "upstream_error", False),
    ],
)
def test_every_upstream_error_has_an_entry(exc, code, retryable):
    error = agent._upstream_error(exc)
    assert (error.code, error.retryable) == (code, retryable)
    entry = ERROR_CODES[code]
    assert entry.retryable is retryable and error.message == entry.message
    ending = ending_of(error)
    assert ending.status is Status.ERROR is entry.status
    assert ending.event == ErrorEvent(code, entry.message, retryable)


def test_the_shared_logs_lost_reader_error_is_in_the_table():
    entry = ERROR_CODES[redis_eventlog.LOST.code]
    assert entry.status is None  # a reader's error: the generation goes on and records its own end
    assert redis_eventlog.LOST == entry.event()
    assert entry.message == "The connection to this answer was lost. Please try again."


def test_the_messages_are_todays():
    """Clients show these; changing one is a change of the wire, not a refactoring."""
    assert {code: (e.message, e.recorded, e.retryable) for code, e in ERROR_CODES.items()} == {
        "timeout": ("The answer took too long and was stopped. Please try again.", "", True),
        "internal": ("Something went wrong on our side while answering. Please try again.", "", True),
        "cancelled": ("The answer was stopped before it was finished.", "The client went away.", True),
        "interrupted": ("The server is restarting and stopped this answer. Please ask again.", "", True),
        "stream_unavailable": ("The connection to this answer was lost. Please try again.", "", True),
        "upstream_unavailable": (
            "The language model is busy or unreachable right now. Please try again in a moment.",
            "",
            True,
        ),
        "upstream_error": ("The language model could not answer this question.", "", False),
    }


def test_no_error_event_is_made_with_a_code_the_table_does_not_have():
    """Codes written out anywhere in the app (``ErrorEvent("…", …)``) are the table's."""
    import ast
    from pathlib import Path

    written = set()
    for path in (Path(__file__).resolve().parents[3] / "streaming").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None))
                in {"ErrorEvent", "UpstreamError"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                written.add(node.args[0].value)
    assert written <= set(ERROR_CODES)
