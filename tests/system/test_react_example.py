"""examples/react-chat, built and driven in a real browser: `npm ci` (when node_modules is missing
or from another lockfile) and `npm run build`, then `vite preview` serving the build with its
proxy to a live server (so the app is on one origin with the API, as the example documents), and
Debian's Chromium driven by Playwright. Once more across origins: built with the server's
absolute URL, served from another port with no proxy, the server allowing it by EVI360_CORS_ORIGINS. The offline model
pauses between words, so an answer lasts long enough to reload and to stop it mid-answer.

A screenshot of the finished answer is saved to var/test-artifacts/react-chat.png.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support import chromium, npm
from tests.support.live_server import PASSWORD, ROOT, USERNAME, LiveServer, free_port, live_server
from tests.support.pages import ARTIFACTS

EXAMPLE = ROOT / "examples" / "react-chat"
NODE, _ = npm.require_node()

chromium.require_chromium()

from playwright.sync_api import Page, expect  # noqa: E402

QUESTION = "Hoe zwaar mag ik tillen op het werk?"


@pytest.fixture(scope="module")
def built_app() -> Path:
    npm.install(EXAMPLE)
    npm.run(EXAMPLE, "run", "build")
    return EXAMPLE / "dist"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("react-example"), EVI360_OFFLINE_TOKEN_DELAY_MS="80") as server:
        yield server


@pytest.fixture(scope="module")
def app_url(built_app, server, tmp_path_factory) -> Iterator[str]:
    """The built app, served by `vite preview`, whose proxy forwards /api/ to the live server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = tmp_path_factory.mktemp("vite") / "preview.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                NODE,
                "node_modules/vite/bin/vite.js",
                "preview",
                "--strictPort",
                "--host",
                "127.0.0.1",
                "--port",
                f"{port}",
            ],
            cwd=EXAMPLE,
            env={**os.environ, "EVI360_URL": server.base},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(url, timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(log_path.read_text()) from None
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


class _StaticFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # a line per request otherwise
        pass


@pytest.fixture(scope="module")
def cross_origin(tmp_path_factory) -> Iterator[tuple[str, LiveServer]]:
    """(the app's URL, the server): the app built with the server's absolute URL
    (VITE_EVI360_URL) and served from another origin (port) by a plain static file server, no
    proxy; the server lists that origin in EVI360_CORS_ORIGINS."""
    npm.install(EXAMPLE)
    out = tmp_path_factory.mktemp("react-cors-dist")
    static = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_StaticFiles, directory=str(out)))
    app = f"http://127.0.0.1:{static.server_address[1]}"
    threading.Thread(target=static.serve_forever, daemon=True).start()
    try:
        with live_server(tmp_path_factory.mktemp("react-cors"), EVI360_CORS_ORIGINS=app) as server:
            built = subprocess.run(
                [NODE, "node_modules/vite/bin/vite.js", "build", "--outDir", str(out), "--emptyOutDir"],
                cwd=EXAMPLE,
                env={**os.environ, "VITE_EVI360_URL": server.base},
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert built.returncode == 0, built.stdout + built.stderr
            yield f"{app}/", server
    finally:
        static.shutdown()
        static.server_close()


def signed_in(browser, url: str) -> Page:
    """The app at ``url`` in a new browser context, signed in."""
    context = browser.new_context(locale="nl-NL", viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.goto(url)
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=question]")
    return page


@pytest.fixture
def page(browser, app_url) -> Iterator[Page]:
    page = signed_in(browser, app_url)
    yield page
    page.context.close()


def ask_until_streaming(page: Page) -> None:
    """Ask the Dutch question and wait until some of the answer is on the page, still streaming."""
    page.fill("[data-testid=question]", QUESTION)
    page.press("[data-testid=question]", "Enter")
    page.wait_for_function(
        """() => document.querySelector("[data-testid=chat]").dataset.status === "streaming"
            && document.querySelector("[data-testid=answer-text]")?.textContent.length > 0"""
    )


def wait_until_ready(page: Page) -> None:
    expect(page.get_by_test_id("chat")).to_have_attribute("data-status", "ready", timeout=60_000)


def session(server, session_id: str) -> dict:
    """The server's record of the answer (its status, answer and conversation)."""
    headers = {"Authorization": f"Bearer {server.token()}"}
    return httpx.get(f"{server.base}/api/v1/stream/sessions/{session_id}", headers=headers).json()


def finished_session(server, session_id: str) -> dict:
    deadline = time.monotonic() + 30
    while (record := session(server, session_id))["status"] == "streaming" and time.monotonic() < deadline:
        time.sleep(0.1)
    return record


def chat_id(page: Page) -> str:
    return page.evaluate("new URL(location.href).searchParams.get('chat')")


def assert_recorded_as_shown(server, page: Page, answer: str) -> None:
    """The server recorded the answer the page shows, completed, as an AI SDK client's."""
    record = finished_session(server, page.get_by_test_id("session").text_content())
    assert record["status"] == "completed"
    assert record["client_kind"] == "ai_sdk"
    assert record["answer"].strip() == answer.strip()


def test_streams_a_cited_dutch_answer_with_its_sources_beside_it(page, server):
    ask_until_streaming(page)
    mid_answer = page.get_by_test_id("answer-text").text_content()
    wait_until_ready(page)

    answer = page.get_by_test_id("answer-text").text_content()
    assert answer.startswith(mid_answer) and len(answer) > len(mid_answer)
    assert "[1]" in answer
    expect(page.get_by_test_id("language")).to_have_text("nl")
    # Each source is labelled with the marker that cites it, and every marker has its source.
    labels = page.locator("[data-testid=source] .marker").all_text_contents()
    assert labels and sorted(labels) == sorted(set(re.findall(r"\[\d+\]", answer)))
    links = page.locator("[data-testid=source] a")
    assert links.count() >= 1
    for i in range(links.count()):
        assert links.nth(i).get_attribute("href").startswith(("http://", "https://"))
        assert links.nth(i).get_attribute("rel") == "noopener noreferrer"
    # Beside: the sources panel is to the right of the answer's text, not under it.
    text_box = page.locator(".answer-text").bounding_box()
    sources_box = page.get_by_test_id("sources").bounding_box()
    assert sources_box["x"] >= text_box["x"] + text_box["width"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "react-chat.png"), full_page=True)

    assert_recorded_as_shown(server, page, answer)


def test_a_reload_mid_answer_resumes_it(page, server):
    ask_until_streaming(page)
    before = page.get_by_test_id("answer-text").text_content()
    stream_path = f"/api/v1/chat/{chat_id(page)}/stream"
    with page.expect_response(lambda r: r.url.endswith(stream_path)) as resumed:
        page.reload()
    assert resumed.value.status == 200  # the running answer, not 204
    wait_until_ready(page)

    expect(page.get_by_test_id("user-message")).to_have_text(QUESTION)
    expect(page.get_by_test_id("answer")).to_have_count(1)  # the replay replaced the partial answer
    answer = page.get_by_test_id("answer-text").text_content()
    assert answer.startswith(before) and len(answer) > len(before)
    assert_recorded_as_shown(server, page, answer)


def test_stop_cancels_the_answer_on_the_server(page, server):
    ask_until_streaming(page)
    session_id = page.get_by_test_id("session").text_content()
    page.get_by_test_id("stop").click()
    wait_until_ready(page)
    expect(page.get_by_test_id("send")).to_be_visible()

    record = finished_session(server, session_id)
    assert record["status"] == "cancelled"


def test_an_app_on_another_origin_signs_in_and_streams_through_cors(browser, cross_origin):
    app_url, server = cross_origin
    page = signed_in(browser, app_url)  # POST /api/v1/auth/token/ across origins, preflighted
    try:
        with page.expect_response(f"{server.base}/api/v1/chat") as chat:
            ask_until_streaming(page)
        assert chat.value.status == 200
        assert chat.value.headers["access-control-allow-origin"] == app_url.rstrip("/")
        wait_until_ready(page)
        answer = page.get_by_test_id("answer-text").text_content()
        assert "[1]" in answer
        expect(page.get_by_test_id("source").first).to_be_visible()
        assert_recorded_as_shown(server, page, answer)
    finally:
        page.context.close()
