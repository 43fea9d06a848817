"""The encoder: the engine's typed events as UI message chunks (every chunk type), and the SSE
bytes of another worker's run decoded back into those events."""

from __future__ import annotations

import json

import pytest

from streaming.aisdk.stream import (
    CHUNKS,
    DUTCH_ERRORS,
    HEADERS,
    UIMessageStream,
    ui_message_stream,
    user_message,
)
from streaming.engine.events import (
    ERROR_CODES,
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    SessionEvent,
    TokenEvent,
)
from streaming.engine.wire import KEEP_ALIVE, decoded, encode, encode_retry

SESSION = SessionEvent("s-1", "c-1", "nl", "claude")
WITH_URL = CitationEvent(1, 7, "Tillen", "https://kb.example/tillen", "Niet meer dan 23 kg.", chunk_id=70)
WITHOUT_URL = CitationEvent(2, 8, "Intern", "", "Een tilhulp.", chunk_id=None)
DONE = DoneEvent("s-1", 120, 900, 50, 8, [1, 2])


def page(source_id, chunk_id):
    return f"https://evi.example/sources/{source_id}" + (f"?passage={chunk_id}" if chunk_id else "")


def encoded(events) -> list[dict | str]:
    stream = UIMessageStream(page)
    return [
        json.loads(chunk.encode(7)) if chunk.type != "done" else "[DONE]"
        for e in events
        for chunk in stream.chunks(e)
    ]


def test_every_event_maps_to_its_chunks():
    got = encoded(
        [SESSION, TokenEvent("Til "), WITH_URL, TokenEvent("[1]"), WITHOUT_URL, TokenEvent(" en [2]."), DONE]
    )
    assert got == [
        {
            "type": "start",
            "messageId": "s-1",
            "messageMetadata": {"sessionId": "s-1", "conversationId": "c-1", "language": "nl"},
        },
        {"type": "text-start", "id": "text-s-1"},
        {"type": "text-delta", "delta": "Til ", "id": "text-s-1"},
        {
            "type": "source-url",
            "sourceId": "1",
            "url": "https://kb.example/tillen",
            "title": "Tillen",
            "providerMetadata": {
                "evi360": {
                    "marker": 1,
                    "sourceId": 7,
                    "snippet": "Niet meer dan 23 kg.",
                    "page": "https://evi.example/sources/7?passage=70",
                }
            },
        },
        {"type": "text-delta", "delta": "[1]", "id": "text-s-1"},
        {
            "type": "source-document",
            "sourceId": "2",
            "mediaType": "text/html",
            "title": "Intern",
            "providerMetadata": {
                "evi360": {
                    "marker": 2,
                    "sourceId": 8,
                    "snippet": "Een tilhulp.",
                    "page": "https://evi.example/sources/8",
                }
            },
        },
        {"type": "text-delta", "delta": " en [2].", "id": "text-s-1"},
        {"type": "text-end", "id": "text-s-1"},
        {
            "type": "finish",
            "finishReason": "stop",
            "messageMetadata": {
                "model": "claude",
                "usage": {"inputTokens": 50, "outputTokens": 8},
                "ttftMs": 120,
                "durationMs": 900,
            },
        },
        "[DONE]",
    ]


def test_a_url_that_is_not_http_is_a_document():
    odd = CitationEvent(1, 7, "Lokaal", "file:///etc/passwd", "x")
    assert encoded([SESSION, odd])[1]["type"] == "source-document"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nl", "Het taalmodel kon deze vraag niet beantwoorden."),
        ("en", "The language model could not answer this question."),
    ],
)
def test_a_failure_is_an_error_chunk_in_the_answers_language(language, expected):
    session = SessionEvent("s-1", None, language, "claude")
    got = encoded([session, TokenEvent("Eerst"), ERROR_CODES["upstream_error"].event()])
    assert got[-3:] == [
        {"type": "text-end", "id": "text-s-1"},
        {"type": "error", "errorText": expected},
        "[DONE]",
    ]


def test_a_failure_before_any_text_has_no_text_end():
    got = encoded([SESSION, ERROR_CODES["timeout"].event()])
    assert [c if isinstance(c, str) else c["type"] for c in got] == ["start", "error", "[DONE]"]


def test_a_stop_is_an_abort_not_an_error():
    got = encoded([SESSION, TokenEvent("Til"), ERROR_CODES["cancelled"].event()])
    assert got[-2:] == [{"type": "abort", "reason": "Het antwoord is gestopt voordat het af was."}, "[DONE]"]


def test_every_error_code_has_a_dutch_message():
    assert set(DUTCH_ERRORS) == set(ERROR_CODES)
    unknown = ErrorEvent("something_new", "Something new went wrong.", False)
    assert user_message(unknown, "nl") == "Something new went wrong."  # the engine's, rather than none


def test_the_header_and_the_chunk_classes_are_pydantic_ais():
    from pydantic_ai.ui.vercel_ai import response_types

    assert HEADERS == {"x-vercel-ai-ui-message-stream": "v1"}
    assert all(getattr(response_types, c.__name__) is c for c in CHUNKS)


async def _items(*values):
    for value in values:
        yield value


async def test_events_that_arrive_together_go_out_in_one_write_and_keep_alives_pass():
    out = [c async for c in ui_message_stream(_items([SESSION, TokenEvent("a")], None, [DONE]), page)]
    assert out[1] == KEEP_ALIVE
    assert out[0].count(b"data: ") == 3 and out[0].endswith(b"\n\n")
    assert out[2].endswith(b"data: [DONE]\n\n")


async def test_sse_bytes_decode_to_the_events_that_made_them():
    events = [SESSION, WITH_URL, TokenEvent("Til [1]\nregel"), DONE, ErrorEvent("timeout", "x", True)]
    raw = encode_retry(1000) + b"".join(encode(i, e) for i, e in enumerate(events)) + KEEP_ALIVE
    # Split anywhere, even inside an event: the decoder waits for the rest.
    chunks = [raw[:10], raw[10:77], raw[77:]]
    got = [e async for batch in decoded(_items(*chunks)) if batch for e in batch]
    assert got == events  # the cited passage (chunk id) included: another worker's links show it
    assert [b async for b in decoded(_items(KEEP_ALIVE))] == [None]


def test_what_the_encoder_writes_validates_against_the_schemas_chunks():
    import jsonschema

    from streaming.api.schema.events import ui_message_schemas

    schemas = ui_message_schemas()
    root = {"components": {"schemas": schemas}, **schemas["UIMessageChunk"]}
    events = [
        SESSION,
        TokenEvent("Til "),
        WITH_URL,
        WITHOUT_URL,
        TokenEvent("[1]"),
        DONE,
        ERROR_CODES["cancelled"].event(),
    ]
    for chunk in encoded(events):
        if chunk != "[DONE]":
            jsonschema.validate(chunk, root)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"type": "text-delta", "delta": "x"}, root)  # no id
