"""Request bodies: the serializer's fields keep the API's rules, codes and messages."""

from __future__ import annotations

import json
import uuid

import pytest

from evi360.errors import ApiError
from streaming.api.bodies import MAX_QUERY_CHARS, validated_question

CONVERSATION = "0b5e7f43-9d0c-4a43-9a52-d3f3c1e0a1b2"


def _validated(body) -> dict:
    return validated_question(body if isinstance(body, bytes) else json.dumps(body).encode())


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"{oops", "invalid_json", "The request body is not valid JSON"),
        (b"", "invalid_json", "The request body is not valid JSON"),
        ([], "invalid_json", "The request body must be a JSON object."),
        ({}, "invalid_query", "'query' must be a non-empty string."),
        ({"query": 7}, "invalid_query", "'query' must be a non-empty string."),
        ({"query": " \t\u3000"}, "invalid_query", "'query' must be a non-empty string."),
        ({"query": "x\x00y"}, "invalid_query", "'query' must not contain NUL characters."),
        ({"query": "x" * (MAX_QUERY_CHARS - 1) + "  "}, "query_too_long", "'query' is longer than 4000"),
        ({"query": "x", "language": "de"}, "invalid_language", "'language' must be one of: auto, nl, en."),
        ({"query": "x", "language": ["nl"]}, "invalid_language", "'language' must be one of"),
        ({"query": "x", "conversation_id": "nope"}, "invalid_conversation_id", "'conversation_id' must be"),
        ({"query": "x", "conversation_id": 12}, "invalid_conversation_id", "'conversation_id' must be"),
        ({"regenerate": "nope"}, "invalid_regenerate", "'regenerate' must be a UUID."),
        ({"regenerate": None}, "invalid_query", "'query' must be a non-empty string."),
        ({"query": None, "regenerate": CONVERSATION}, "invalid_query", "'query' must be a non-empty"),
        # the first failing field answers, in the order of the fields
        ({"query": "", "language": "de", "conversation_id": 1}, "invalid_query", "'query'"),
    ],
)
def test_refusals_keep_their_codes_and_messages(body, code, message):
    with pytest.raises(ApiError) as refused:
        _validated(body)
    assert (refused.value.status, refused.value.code) == (400, code)
    assert refused.value.message.startswith(message)


def test_a_valid_body_is_trimmed_and_typed():
    assert _validated({"query": "  Tillen?\n", "language": None, "conversation_id": CONVERSATION}) == {
        "query": "Tillen?",
        "language": "auto",
        "conversation_id": uuid.UUID(CONVERSATION),
        "regenerate": None,
    }
    assert _validated({"query": "x", "language": "en"})["language"] == "en"
    assert _validated({"query": "x" * MAX_QUERY_CHARS})["conversation_id"] is None


def test_the_schema_describes_the_serializer_that_validates(client):
    spec = client.get("/api/schema/", {"format": "json"}).json()
    body = spec["paths"]["/api/v1/stream/query"]["post"]["requestBody"]["content"]["application/json"]
    name = body["schema"]["$ref"].rsplit("/", 1)[1]
    assert spec["components"]["schemas"][name]["properties"]["query"]["maxLength"] == MAX_QUERY_CHARS
    # `query` may be left out when `regenerate` names the session whose question is asked again.
    assert "required" not in spec["components"]["schemas"][name]
    assert spec["components"]["schemas"][name]["properties"]["regenerate"]["format"] == "uuid"
