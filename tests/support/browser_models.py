"""A scripted model for tests that run the app in another process (daphne): set
``EVI360_MODEL=python:tests.support.browser_models:scripted`` and ``EVI360_TEST_SCRIPT`` to a JSON file.

The file is read at every model request, so a test changes what the next answer is by rewriting
it: ``{"deltas": [...], "delay": 0.05, "fail_after": 2}`` streams the deltas with ``delay``
seconds between them; with ``fail_after`` it fails as an overloaded upstream after that many
deltas. ``"fail_once": true`` fails only the first request after the file is written.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.models.function import FunctionModel


def scripted() -> FunctionModel:
    path = Path(os.environ["EVI360_TEST_SCRIPT"])

    async def stream(messages, info):
        script = json.loads(path.read_text(encoding="utf-8"))
        fail_after = script.get("fail_after")
        if script.get("fail_once"):
            script["fail_once"] = False
            script["fail_after"] = None
            path.write_text(json.dumps(script), encoding="utf-8")
        for index, delta in enumerate(script["deltas"]):
            if fail_after is not None and index == fail_after:
                raise ModelHTTPError(529, "scripted", {"type": "overloaded_error"})
            if index:
                await asyncio.sleep(script.get("delay", 0))
            yield delta

    return FunctionModel(stream_function=stream, model_name="scripted")


def set_script(script_file: Path, **script: object) -> None:
    """What the scripted model answers next (the keys above), written to its ``EVI360_TEST_SCRIPT``."""
    script_file.write_text(json.dumps(script), encoding="utf-8")


# A Claude-style answer (heading, numbered list, bold, a marker, a table, a code block), split in
# the middle of its syntax, for the chat page's Markdown tests (browser and tests/test_chat_markdown.py).
MARKDOWN_DELTAS = [
    "#",
    "# Tillen",
    " op het werk\n\nVolgens de richtlijn [1] geldt:\n\n1",
    ". Til *",
    "*maximaal 23",
    " kg*",
    "* per keer.\n",
    "2. Gebruik een **hulp",
    "middel**.\n\n| Last",
    " | Advies |\n|--",
    "-|---",
    "|\n| 10 kg | Alleen",
    " tillen |\n| 25 kg | Met z'n tweeën |\n\n``",
    "`python\nmax_kg",
    " = 23\n`",
    "``\n\nLet op: **veilig",
    "heid** eerst [1].",
]
