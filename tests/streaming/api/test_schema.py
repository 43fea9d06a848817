"""The OpenAPI 3.1 description (/api/schema/) and its browsable docs (/api/docs/), including the
plain async streaming views that drf-spectacular cannot see by itself."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import ClassVar

import jsonschema
import pytest
from django.contrib.staticfiles import finders
from django.urls import URLPattern, get_resolver
from drf_spectacular.validation import validate_schema

from streaming.api.schema.errors import NOT_BLANK
from streaming.api.schema.events import _field_schemas
from streaming.api.schema.operations import _patterns
from streaming.engine.events import CitationEvent, DoneEvent, ErrorEvent, SessionEvent, TokenEvent
from streaming.engine.wire import encode


@pytest.fixture(scope="module")
def spec() -> dict:
    from django.test import Client

    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def test_a_string_that_drf_trims_to_blank_does_not_match_the_schema():
    white = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    for flags in (0, re.ASCII):  # `\s` over Unicode or ASCII: the pattern does not depend on it
        pattern = re.compile(NOT_BLANK, flags)
        assert [c for c in white if pattern.match(c * 2)] == []
        assert pattern.match(" a\u3000") and not pattern.match("a\x00")


def test_schema_is_valid_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    validate_schema(spec)


def _api_routes() -> dict[str, URLPattern]:
    routes = {}
    for route, pattern in _patterns(get_resolver().url_patterns):
        if route.startswith("api/v1/") and pattern.name:
            routes[
                "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{id}" if m[1] == "pk" else f"{{{m[1]}}}", route)
            ] = pattern
    return routes


def test_every_api_endpoint_is_described(spec):
    routes = _api_routes()
    assert len(routes) >= 8
    assert set(routes) <= set(spec["paths"])


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/stream/query", {"post"}),
        ("/api/v1/stream/sessions/", {"get", "post"}),
        ("/api/v1/stream/sessions/{id}", {"get", "delete"}),
        ("/api/v1/stream/sessions/{id}/events", {"get"}),
        ("/api/v1/conversations/", {"get"}),
        ("/api/v1/conversations/{id}", {"get", "delete"}),
    ],
)
def test_each_endpoint_documents_its_methods_and_errors(spec, path, methods):
    operations = spec["paths"][path]
    assert set(operations) == methods
    for operation in operations.values():
        assert operation["security"], "every endpoint needs credentials"
        errors = {code for code in operation["responses"] if code.startswith(("4", "5"))}
        assert {"400", "401"} <= errors
        for code in errors:
            (media,) = operation["responses"][code]["content"]
            assert media == "application/json"
            assert operation["responses"][code]["content"][media]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }


def test_streaming_endpoints_describe_the_event_stream(spec):
    query = spec["paths"]["/api/v1/stream/query"]["post"]
    ok = query["responses"]["200"]["content"]
    assert ok["text/event-stream"]["schema"] == {"$ref": "#/components/schemas/StreamEvent"}
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/FinishedAnswer"}
    assert "docs/sse-protocol.md" in query["responses"]["200"]["description"]
    assert list(query["requestBody"]["content"]) == ["application/json"]
    events = spec["paths"]["/api/v1/stream/sessions/{id}/events"]["get"]
    assert events["responses"]["200"]["content"]["text/event-stream"]["schema"]["$ref"].endswith(
        "StreamEvent"
    )
    assert "410" in events["responses"]
    assert {p["name"] for p in events["parameters"]} >= {"Last-Event-ID", "last_event_id"}
    created = spec["paths"]["/api/v1/stream/sessions/"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("SessionCreated")


def _wire(raw: bytes) -> dict[str, str]:
    fields = dict(line.split(": ", 1) for line in raw.decode().strip().split("\n"))
    return fields


@pytest.mark.parametrize(
    "event",
    [
        SessionEvent("0b5e7f43-9d0c-4a43-9a52-d3f3c1e0a1b2", None, "nl", "offline"),
        CitationEvent(1, 7, "Tillen", "https://example.org/tillen", "Til niet meer dan 23 kg."),
        TokenEvent("Til niet meer dan 23 kg [1]."),
        DoneEvent("0b5e7f43-9d0c-4a43-9a52-d3f3c1e0a1b2", 120, 900, 310, 42, [1]),
        ErrorEvent("upstream_unavailable", "The model is overloaded.", True),
    ],
)
def test_the_encoder_writes_what_the_schema_describes(spec, event):
    wire = _wire(encode(3, event))
    components = spec["components"]["schemas"]
    name = event.type.capitalize()
    root = {"components": spec["components"]}
    jsonschema.Draft202012Validator({**root, "$ref": "#/components/schemas/StreamEvent"}).validate(wire)
    jsonschema.Draft202012Validator(
        {**root, "$ref": f"#/components/schemas/{name}EventData"}, format_checker=jsonschema.FormatChecker()
    ).validate(json.loads(wire["data"]))
    # and the description is strict enough to notice a change of shape
    assert set(components[f"{name}EventData"]["required"]) == set(json.loads(wire["data"]))


def test_a_changed_event_shape_does_not_validate(spec):
    data = {"txt": "hallo"}
    validator = jsonschema.Draft202012Validator(
        {"components": spec["components"], "$ref": "#/components/schemas/TokenEventData"}
    )
    assert not validator.is_valid(data)


def test_docs_page_uses_only_our_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # Swagger UI's init script comes from the page's own URL (the CSP allows no inline script).
    script = re.search(r"""<script src="(/api/docs/\?[^"]*script[^"]*)">""", html)
    assert script, html
    init = client.get(script[1].replace("&amp;", "&"))
    assert init["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in init.content.decode()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no CDN"
    assets = re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", html)
    assert any("swagger-ui" in a for a in assets)
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset


def test_event_data_schemas_follow_the_dataclasses_fields():
    @dataclass(frozen=True)
    class TokenEvent:  # a token event with one more field, as a future change might add
        type: ClassVar[str] = "token"
        text: str
        offsets: list[int]
        final: bool | None

    assert _field_schemas(TokenEvent) == {
        "text": {"type": "string", "minLength": 1},
        "offsets": {"type": "array", "items": {"type": "integer"}},
        "final": {"type": ["boolean", "null"]},
    }
