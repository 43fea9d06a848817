"""The app's pages driven in Chromium (tests/support/chromium.py), as the browser tests share them:
logging in to the chat page or the admin, asking, waiting for the answer, what the
Content-Security-Policy refused, and screenshots. Playwright's objects come from the caller."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.live_server import ADMIN_PASSWORD, ADMIN_USERNAME, PASSWORD, ROOT, USERNAME, LiveServer

if TYPE_CHECKING:  # Playwright is imported only by tests that found a Chromium
    from playwright.sync_api import Browser, Page

ARTIFACTS = ROOT / "var" / "test-artifacts"

# Markup that runs script wherever it is not kept inert (a source's title and text, an answer).
XSS = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'

# Every page records what its Content-Security-Policy refused (Playwright's init script itself is
# not subject to it); `violations(page)` reads the record of the current document.
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def violations(page: Page) -> list[str]:
    return page.evaluate("window.cspViolations")


def watched_page(browser: Browser, locale: str | None = None) -> Page:
    """A new page in a context of its own, its CSP violations recorded."""
    context = browser.new_context(locale=locale, viewport={"width": 1100, "height": 800})
    context.add_init_script(WATCH_CSP)
    return context.new_page()


def logged_in(browser: Browser, server: LiveServer, locale: str = "en-GB") -> Page:
    page = watched_page(browser, locale)
    page.goto(f"{server.base}/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=question]")
    # The page's script is deferred: until it has run, Enter in the question box is a new line.
    page.wait_for_function("() => window.evi360 !== undefined")
    return page


def admin_logged_in(browser: Browser, server: LiveServer, path: str = "/admin/") -> Page:
    """The admin's ``path``, logged in as the superuser (``server.create_superuser()`` first)."""
    page = watched_page(browser)
    page.goto(f"{server.base}{path}")
    page.fill("input[name=username]", ADMIN_USERNAME)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    return page


def ask(page: Page, text: str, language: str = "auto") -> None:
    page.select_option("#language", language)
    page.fill("[data-testid=question]", text)
    page.press("[data-testid=question]", "Enter")


def wait_done(page: Page, timeout: float = 20_000) -> None:
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=answer]');"
        " return a && !a.classList.contains('streaming'); }",
        timeout=timeout,
    )


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path
