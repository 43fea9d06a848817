"""The browser tests' Chromium and the chat page's scripted live server, one of each a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import chromium
from tests.support.live_server import LiveServer, scripted_live_server
from tests.support.pages import XSS


@pytest.fixture(scope="module")
def browser():
    with chromium.headless() as browser:
        yield browser


@pytest.fixture(scope="module")
def scripted_server(tmp_path_factory, script_file: Path) -> Iterator[LiveServer]:
    """The scripted model's server, with a source whose title and text carry script (XSS)."""
    xss = (
        f"---\ntitle: 'Gevaar {XSS}'\nurl: https://kb.example/xss\nlanguage: nl\n---\n"
        f"# Gevaar\n\nDe werkgever beoordeelt valgevaar bij tillen. {XSS} Ladders staan stevig.\n"
    )
    with scripted_live_server(
        tmp_path_factory.mktemp("browser-scripted"), script_file, {"xss.md": xss}, EVI360_STREAM_TIMEOUT="10"
    ) as server:
        yield server
