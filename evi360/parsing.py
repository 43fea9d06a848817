"""The one JSON parser for request bodies: DRF's (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``)
and our hand-parsed endpoints'. Whatever the body, the outcome is a value or ``JSONRefused``
(a 400), never a 500: Python's ``json`` raises ``RecursionError`` for deep nesting, ``ValueError``
for a number of more than 4,300 digits, and accepts lone surrogates (``"\\ud800"``) that no
database or model can take as UTF-8 text."""

from __future__ import annotations

import json
import re
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from evi360.errors import ApiError

# Only a "\uD800"-"\uDFFF" escape can make a surrogate (the UTF-8 decoder refuses encoded ones):
# the parsed value is searched only when the raw text has one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


# Ids, event ids, page numbers and sizes are counts: 18 digits fit in a 64-bit column and are far
# more than any stream or list has; Python's int() refuses more than 4,300 (a ValueError).
MAX_COUNT_DIGITS = 18
MAX_COUNT = 10**MAX_COUNT_DIGITS - 1  # the schema's maximum for them


def parse_count(raw: str) -> int | None:
    """A count written in ASCII digits (at most ``MAX_COUNT_DIGITS``), or None for anything else."""
    if raw.isascii() and raw.isdigit() and len(raw) <= MAX_COUNT_DIGITS:
        return int(raw)
    return None


class JSONRefused(ApiError, ValueError):
    """The body is not JSON we take (a 400, ``invalid_json``); the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "invalid_json", message)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # as DRF's STRICT_JSON: no NaN or Infinity


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(raw: bytes | str) -> Any:
    """The JSON value of a request body, or ``JSONRefused``."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise JSONRefused("The request body is not UTF-8 text.") from None
    except RecursionError:
        raise JSONRefused("The request body is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, and a number too long to convert
        raise JSONRefused(f"The request body is not valid JSON ({exc}).") from None
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(value):
        raise JSONRefused("The request body has a lone surrogate (\\ud800-\\udfff): not Unicode text.")
    return value


def read_limited(stream: IO[bytes]) -> bytes:
    """A body read from a stream, at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes: DRF reads the
    request's stream, which Django does not bound as it bounds ``request.body``."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    raw = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(raw) > limit:
        raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
    return raw


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser on ``loads``: a refused body is DRF's ParseError (400)."""

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return loads(read_limited(stream))
        except JSONRefused as exc:
            raise ParseError(str(exc)) from None
