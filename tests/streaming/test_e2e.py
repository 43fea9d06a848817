"""End to end: a real daphne on a free port, the real anthropic SDK talking to a stand-in of the
Messages API on loopback, and a real SSE client (httpx-sse) reading the stream."""

from __future__ import annotations

import itertools
import json
import time
from contextlib import contextmanager

import httpx
import pytest
from httpx_sse import connect_sse

from tests.support.anthropic_standin import (
    AnthropicStandIn,
    hang,
    http_error,
    overloaded_midstream,
    text_stream,
)
from tests.support.live_server import live_server


@pytest.fixture(scope="module")
def upstream():
    with AnthropicStandIn() as standin:
        yield standin


@pytest.fixture(scope="module")
def server(upstream, tmp_path_factory):
    """daphne serving the app, with Claude pointed at the stand-in."""
    with live_server(
        tmp_path_factory.mktemp("e2e"),
        EVI360_MODEL="anthropic:claude-sonnet-4-6",
        ANTHROPIC_API_KEY="sk-test-not-real",
        ANTHROPIC_BASE_URL=upstream.base_url,
        EVI360_UPSTREAM_MAX_RETRIES="0",
        EVI360_STREAM_TIMEOUT="2",
    ) as live:
        yield {"base": live.base, "headers": {"Authorization": f"Bearer {live.token()}"}}


@contextmanager
def open_stream(server, query: str):
    """The SSE events of one answer, as httpx-sse reads them (without the leading `retry:` block,
    which httpx-sse yields as an event of its own; browsers don't)."""
    with (
        httpx.Client(timeout=30) as client,
        connect_sse(
            client,
            "POST",
            f"{server['base']}/api/v1/stream/query",
            json={"query": query},
            headers=dict(server["headers"]),  # connect_sse adds Accept to the dict it is given
        ) as source,
    ):
        assert source.response.status_code == 200
        assert source.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        yield (event for event in source.iter_sse() if event.data)


def stream(server, query: str = "Hoe zwaar mag ik tillen?"):
    """(arrival time, event type, data, id) for each event of one answer."""
    with open_stream(server, query) as events:
        return [(time.monotonic(), e.event, json.loads(e.data), e.id) for e in events]


def session(server, session_id: str, until: str | None = None) -> dict:
    deadline = time.monotonic() + 10
    while True:
        body = httpx.get(
            f"{server['base']}/api/v1/stream/sessions/{session_id}", headers=server["headers"]
        ).json()
        if until is None or body["status"] == until or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_tokens_arrive_one_by_one_as_the_model_sends_them(server, upstream):
    upstream.enqueue(text_stream(["warm"]))  # the server's first request pays for lazy imports
    stream(server)
    deltas = ["Til ", "maximaal ", "23 kg [", "1]", ". Één € ✓\n", "klaar."]
    upstream.enqueue(text_stream(deltas, delay=0.25, input_tokens=400, output_tokens=12))
    events = stream(server)
    kinds = [e[1] for e in events]
    assert kinds[0] == "session" and kinds[-1] == "done"
    assert [e[3] for e in events] == [str(i) for i in range(len(events))]
    tokens = [e for e in events if e[1] == "token"]
    assert "".join(e[2]["text"] for e in tokens) == "".join(deltas)
    assert not any(e[2]["text"].endswith("[") for e in tokens)
    citation = next(e for e in events if e[1] == "citation")
    assert citation[2]["marker"] == 1 and events.index(citation) < next(
        i for i, e in enumerate(events) if e[1] == "token" and "[1]" in e[2]["text"]
    )
    # Spread over time like the upstream sent them: not buffered and delivered in one burst.
    assert tokens[-1][0] - tokens[0][0] > 0.25 * (len(tokens) - 1) * 0.6
    assert all(b[0] - a[0] > 0.08 for a, b in itertools.pairwise(tokens))
    done = events[-1][2]
    assert (done["input_tokens"], done["output_tokens"], done["citations"]) == (400, 12, [1])
    row = session(server, done["session_id"])
    assert row["status"] == "completed" and row["model"] == "anthropic:claude-sonnet-4-6"
    assert row["answer"] == "".join(deltas)


def test_client_disconnect_cancels_the_upstream_and_is_recorded(server, upstream):
    upstream.disconnected.clear()
    upstream.enqueue(text_stream(["woord "] * 100, delay=0.1))
    with open_stream(server, "tillen") as events:
        session_id = json.loads(next(events).data)["session_id"]
        assert next(e for e in events if e.event == "token")
    assert upstream.wait_for_disconnect(5)
    row = session(server, session_id, until="cancelled")
    assert row["status"] == "cancelled"
    assert row["answer"].startswith("woord ") and row["answer"].count("woord") < 100


def test_overloaded_mid_stream_ends_with_an_error_event(server, upstream):
    upstream.enqueue(overloaded_midstream(["Eerst ", "dit "]))
    events = stream(server)
    assert [e[1] for e in events] == ["session", "token", "token", "error"]
    assert events[-1][2]["code"] == "upstream_unavailable" and events[-1][2]["retryable"] is True
    row = session(server, events[0][2]["session_id"])
    assert (row["status"], row["error_code"], row["answer"]) == (
        "error",
        "upstream_unavailable",
        "Eerst dit ",
    )


def test_overloaded_before_the_stream_is_an_error_event(server, upstream):
    upstream.enqueue(http_error(529))
    events = stream(server)
    assert [e[1] for e in events] == ["session", "error"]
    assert events[-1][2]["code"] == "upstream_unavailable"


def test_timeout_stops_the_upstream_and_is_recorded(server, upstream):
    upstream.disconnected.clear()
    upstream.enqueue(hang())
    started = time.monotonic()
    events = stream(server)
    assert [e[1] for e in events] == ["session", "error"]
    assert events[-1][2]["code"] == "timeout"
    assert 1.5 < time.monotonic() - started < 10
    assert upstream.wait_for_disconnect(5)
    assert session(server, events[0][2]["session_id"])["status"] == "timeout"
