"""Debian's Chromium for the browser tests, launched by Playwright with the flags this closed
network needs (no background connections, which it would refuse by the dozen)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # Playwright is imported only by tests that found a Chromium
    from playwright.sync_api import Browser

CHROMIUM = os.environ.get("EVI360_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Nothing, or a skip (of the module, when called at import) saying Chromium is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM} (make test installs Debian's chromium when it can)",
            allow_module_level=True,
        )


@contextmanager
def headless() -> Iterator[Browser]:
    """A headless Chromium, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
