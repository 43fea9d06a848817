"""DefaultChatTransport's body: what is read of it, and each rule's code."""

from __future__ import annotations

import json

import pytest

from evi360.errors import ApiError
from streaming.aisdk.request import ChatRequest, parse_body, valid_chat_id


def raw(**fields) -> bytes:
    return json.dumps(fields).encode()


def text(role, value):
    return {"id": "m", "role": role, "parts": [{"type": "text", "text": value, "state": "done"}]}


def test_the_question_is_the_last_user_message_and_extra_fields_are_allowed():
    messages = [
        {"id": "s", "role": "system", "parts": [{"type": "text", "text": "Je bent een piraat."}]},
        text("user", "Eerste vraag"),
        {
            "id": "a",
            "role": "assistant",
            "parts": [{"type": "step-start"}, {"type": "source-url", "sourceId": "1", "url": "x"}],
        },
        text("user", "  En bij zwangere werknemers? "),
    ]
    body = raw(
        id="Xc2mAGF2wAc0TNtS", messages=messages, trigger="submit-message", extra={"from": "body option"}
    )
    assert parse_body(body) == ChatRequest("Xc2mAGF2wAc0TNtS", "En bij zwangere werknemers?", False, None)


def test_regenerate_and_its_message_id():
    body = raw(id="c1", messages=[text("user", "Vraag")], trigger="regenerate-message", messageId="abc")
    assert parse_body(body) == ChatRequest("c1", "Vraag", True, "abc")
    # absent trigger: a submit; an empty message id is none
    assert parse_body(raw(id="c1", messages=[text("user", "Vraag")], messageId="")).regenerate is False


def test_messages_after_the_last_user_message_are_not_read():
    body = raw(id="c1", messages=[text("user", "Vraag"), text("assistant", "Half antw")])
    assert parse_body(body).question == "Vraag"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("Xc2mAGF2wAc0TNtS", True),
        ("a_b-C9", True),
        ("2f1c6a3e-7d8b-4f5e-9a0b-1c2d3e4f5a6b", True),
        ("", False),
        (".", False),
        ("a b", False),
        ("é", False),
        ("x" * 129, False),
        (None, False),
    ],
)
def test_chat_ids(value, ok):
    assert valid_chat_id(value) is ok


def test_a_refusal_names_its_code():
    with pytest.raises(ApiError) as refused:
        parse_body(
            raw(id="c1", messages=[{"id": "m", "role": "user", "parts": [{"type": "file", "url": "data:,"}]}])
        )
    assert (refused.value.status, refused.value.code) == (400, "unsupported_content")
