"""streaming/engine/wire.py: the events as SSE bytes."""

import json

from streaming.engine.events import (
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    SessionEvent,
    TokenEvent,
)
from streaming.engine.wire import KEEP_ALIVE, encode, encode_retry


def parse(raw: bytes) -> tuple[list[str], dict]:
    lines = raw.decode().split("\n")
    assert raw.endswith(b"\n\n")
    return lines[:-2], json.loads(lines[2].removeprefix("data: "))


def test_token_event_is_one_data_line_even_with_newlines_and_non_ascii():
    lines, data = parse(encode(7, TokenEvent("Tillen ✓\nnieuwe regel\r\n€")))
    assert lines[:2] == ["id: 7", "event: token"]
    assert len(lines) == 3
    assert data == {"text": "Tillen ✓\nnieuwe regel\r\n€"}
    assert "✓".encode() in encode(0, TokenEvent("✓"))  # UTF-8, not \u escapes


def test_each_event_shape():
    assert parse(encode(0, SessionEvent("s", None, "nl", "offline")))[1] == {
        "session_id": "s",
        "conversation_id": None,
        "language": "nl",
        "model": "offline",
    }
    assert parse(encode(1, CitationEvent(2, 9, "Tillen", "https://x", "De last", 41, 12)))[1] == {
        "marker": 2,
        "source": {
            **{"id": 9, "title": "Tillen", "url": "https://x", "snippet": "De last"},
            **{"passage": 41, "page": 12},
        },
    }
    source = parse(encode(1, CitationEvent(2, 9, "Tillen", "https://x", "De last")))[1]["source"]
    assert source["passage"] is None and source["page"] is None
    assert parse(encode(3, DoneEvent("s", 120, 900, 10, 20, [1, 2])))[1] == {
        "session_id": "s",
        "status": "completed",
        "ttft_ms": 120,
        "duration_ms": 900,
        "input_tokens": 10,
        "output_tokens": 20,
        "citations": [1, 2],
    }
    assert parse(encode(4, ErrorEvent("timeout", "Too slow.", True)))[1] == {
        "code": "timeout",
        "message": "Too slow.",
        "retryable": True,
    }


def test_retry_and_keep_alive():
    assert encode_retry(3000) == b"retry: 3000\n\n"
    assert KEEP_ALIVE.startswith(b":")


def test_a_token_is_encoded_exactly_as_every_other_event_would_be():
    """Tokens take a shortcut (no payload dict); the bytes must be the generic encoder's."""
    from hypothesis import given
    from hypothesis import strategies as st

    from streaming.engine.wire import compact_json

    @given(st.integers(min_value=0, max_value=10**6), st.text())
    def same(seq: int, text: str) -> None:
        event = TokenEvent(text)
        generic = f"id: {seq}\nevent: token\ndata: {compact_json(event.payload())}\n\n".encode()
        assert encode(seq, event) == generic

    same()
