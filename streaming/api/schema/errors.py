"""The errors every API operation can answer, added to the schema (our one error shape), so
clients and the schema fuzz know them; and the SSE event schemas put in place."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from streaming.api.bodies import NOT_BLANK
from streaming.api.schema.events import event_schemas, ui_message_schemas

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_QUESTION_REF = {"$ref": "#/components/schemas/StreamQueryRequest"}
_COMMON_ERRORS = {
    "400": "The request is not valid (`invalid_request`, `invalid_json`, …).",
    "401": "No or invalid credentials (`not_authenticated`).",
    "404": "Not found, not yours, or a page past the last (`not_found`): others' objects are never shown.",
    "429": "Too many failed logins for this username or from this address (`too_many_login_attempts`); "
    "`Retry-After` gives the seconds to wait.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds to wait.",
        "required": True,
    }
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the SSE event schemas (ours, and the AI SDK's UI
    message stream's), and every API operation
    documents the JSON errors it can answer (our one error shape), so clients and the schema
    fuzz know them."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            # DRF trims strings: one that is only white space is as blank as an empty one.
            if prop.get("type") == "string" and prop.get("minLength") == 1 and "pattern" not in prop:
                prop["pattern"] = NOT_BLANK
    schemas.update(event_schemas())
    schemas.update(ui_message_schemas())
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            if body.get("schema") == _QUESTION_REF:  # needs `query` or `regenerate` (``anyOf``)
                operation["requestBody"]["required"] = True
            responses = operation.setdefault("responses", {})
            for response in responses.values():
                stream = response.get("content", {}).get("text/event-stream")
                if stream and "$ref" not in stream.get("schema", {}):  # another stream's is a $ref
                    stream["schema"] = {"$ref": "#/components/schemas/StreamEvent"}
            wanted = ["400", "401"]
            if "{" in path or any(p["name"] == "page" for p in operation.get("parameters", [])):
                wanted.append("404")
            if path == reverse("token_obtain"):  # login throttling (streaming/access/login_throttling.py)
                wanted.append("429")
            for status in wanted:
                if status not in responses:
                    responses[status] = {
                        "content": {"application/json": {"schema": _ERROR_REF}},
                        "description": _COMMON_ERRORS[status],
                        **({"headers": _RETRY_AFTER} if status == "429" else {}),
                    }
    return result
