"""The event stream's schemas, generated from the event dataclasses (streaming/engine/events.py):
one per SSE event as the wire carries it, where `event` names the type, `id` is its sequence
number and `data` is one line of JSON of the type's payload."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from citations.language import SUPPORTED
from streaming.engine.events import CitationEvent, DoneEvent, Event

PROTOCOL_DOC = "docs/sse-protocol.md"
EVENTS = (
    "`session` (session_id, conversation_id, language, model), then `citation` events (marker, source) "
    "each sent before the first token that contains its marker, `token` events (text), and exactly one "
    "terminal event: `done` (timings, usage, cited markers) or `error` (code, message, retryable). Every "
    "event has an `id:` (0, 1, 2, …) to resume after with `Last-Event-ID`."
)


# What a field's type does not say (a format, a bound, the values): merged into its schema; an
# enum or const replaces it (its values say the type).
REFINED: dict[tuple[str, str], dict[str, Any]] = {
    ("session", "session_id"): {"format": "uuid"},
    ("session", "conversation_id"): {"format": "uuid"},
    ("session", "language"): {"enum": list(SUPPORTED)},
    ("citation", "marker"): {"minimum": 1},
    ("token", "text"): {"minLength": 1},
    ("done", "session_id"): {"format": "uuid"},
}
_JSON_TYPES = {str: "string", int: "integer", bool: "boolean"}


def _type_schema(hint: Any) -> dict[str, Any]:
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if isinstance(hint, types.UnionType) and len(args) == 1:  # X | None
        return {"type": [_JSON_TYPES[args[0]], "null"]}
    if typing.get_origin(hint) is list:
        return {"type": "array", "items": _type_schema(args[0])}
    return {"type": _JSON_TYPES[hint]}


def _field_schemas(event_class: type) -> dict[str, dict[str, Any]]:
    hints = typing.get_type_hints(event_class)
    properties = {}
    for field in dataclasses.fields(event_class):
        refined = REFINED.get((event_class.type, field.name), {})
        exact = "enum" in refined or "const" in refined
        properties[field.name] = refined if exact else {**_type_schema(hints[field.name]), **refined}
    return properties


def _payload_schema(event_class: type) -> dict[str, Any]:
    """The properties of ``event_class.payload()``: its fields', where two payloads differ."""
    properties = _field_schemas(event_class)
    if event_class is CitationEvent:  # the source's fields are nested, ``source_id`` as ``id``
        source = {"id": properties.pop("source_id")}
        source |= {name: properties.pop(name) for name in ("title", "url", "snippet")}
        source["passage"] = properties.pop("chunk_id") | {
            "description": "The cited passage: /sources/<id>?passage=<passage> shows it highlighted."
        }
        source["page"] = properties.pop("page") | {
            "minimum": 1,
            "description": "The PDF page the passage is on (shown as 'p. 12'); null for other formats.",
        }
        properties["source"] = {"type": "object", "properties": source, "required": list(source)}
    elif event_class is DoneEvent:  # a constant status after the session id
        session_id = properties.pop("session_id")
        properties = {"session_id": session_id, "status": {"const": "completed"}, **properties}
    return properties


def event_schemas() -> dict[str, dict[str, Any]]:
    """``<Type>EventData`` (the JSON of ``data``) and ``<Type>Event`` per event type, and
    ``StreamEvent``: any one of them."""
    schemas: dict[str, dict[str, Any]] = {}
    names = []
    for event_class in typing.get_args(Event):
        event = event_class.type
        name = f"{event.capitalize()}EventData"
        properties = _payload_schema(event_class)
        schemas[name] = {"type": "object", "properties": properties, "required": list(properties)}
        schemas[f"{event.capitalize()}Event"] = {
            "type": "object",
            "properties": {
                "event": {"const": event},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": f"#/components/schemas/{name}"},
                },
            },
            "required": ["event", "id", "data"],
        }
        names.append(f"{event.capitalize()}Event")
    schemas["StreamEvent"] = {
        "description": f"One Server-Sent Event of the answer stream ({PROTOCOL_DOC}).",
        "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in names],
    }
    return schemas


UI_MESSAGE_PROTOCOL_DOC = "docs/ai-sdk.md"


def ui_message_schemas() -> dict[str, dict[str, Any]]:
    """``UIMessageChunk`` (any chunk the AI SDK endpoints send, from Pydantic AI's own classes)
    and ``UIMessageStreamEvent``: one SSE event, whose ``data`` is a chunk's JSON or ``[DONE]``."""
    from pydantic.json_schema import models_json_schema

    from streaming.aisdk.stream import CHUNKS

    refs, top = models_json_schema(
        [(chunk, "serialization") for chunk in CHUNKS],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, dict[str, Any]] = top.get("$defs", {})
    schemas["UIMessageChunk"] = {
        "description": f"One chunk of the AI SDK's UI message stream ({UI_MESSAGE_PROTOCOL_DOC}).",
        "oneOf": [refs[(chunk, "serialization")] for chunk in CHUNKS],
    }
    schemas["UIMessageStreamEvent"] = {
        "type": "object",
        "properties": {
            "data": {
                "anyOf": [
                    {"const": "[DONE]"},
                    {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": "#/components/schemas/UIMessageChunk"},
                    },
                ]
            }
        },
        "required": ["data"],
    }
    return schemas
