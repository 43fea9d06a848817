"""OpenWebUI against a live EVI 360 server, driven once in Chromium, with screenshots.

Starts our server (uvicorn, offline model, a fresh SQLite with the corpus and a demo user, as
``make run`` does) and OpenWebUI (from its own venv, offline, no auth, connected to our /v1/ with
a personal API key), asks two Dutch questions in OpenWebUI's chat, screenshots the answers with
their sources, then opens a source and our source page. Not part of CI: see README.md here.

    /work/main/.venv/bin/python examples/openwebui/run.py [--owui /work/owui-venv/bin/open-webui]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.live_server import PASSWORD, USERNAME, free_port, live_server  # noqa: E402

IMAGES = ROOT / "docs" / "images"
QUESTION = "Hoe zwaar mag ik tillen op het werk?"
# Its answer cites the EHBO checklist, a source with no URL of its own.
URLLESS_QUESTION = "Wat hoort er in een EHBO-kit?"
MODEL = "evi-specialist"
# --out-of-order: a scripted model's answer that cites its second source first (the question
# retrieves two documents).
OUT_OF_ORDER_QUESTION = "Hoe zwaar mag ik tillen, en wanneer moet ik gehoorbescherming dragen?"
OUT_OF_ORDER = ["Draag gehoorbescherming [2] ", "en til niet te zwaar [1]."]
CHROMIUM = os.environ.get("EVI360_CHROMIUM", "/usr/bin/chromium")

# OpenWebUI without network: no model downloads (embeddings, reranker, whisper), no update checks,
# no telemetry, no Ollama; its own background tasks (titles, tags, follow-ups, autocomplete) off,
# so the only request to our /v1/ besides /v1/models is the question itself.
OWUI_ENV = {
    "OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WEBUI_AUTH": "False",
    "ENABLE_OLLAMA_API": "False",
    "ENABLE_OPENAI_API": "True",
    "RAG_EMBEDDING_ENGINE": "openai",
    "BYPASS_EMBEDDING_AND_RETRIEVAL": "True",
    "ENABLE_WEB_SEARCH": "False",
    "ENABLE_TITLE_GENERATION": "False",
    "ENABLE_TAGS_GENERATION": "False",
    "ENABLE_FOLLOW_UP_GENERATION": "False",
    "ENABLE_AUTOCOMPLETE_GENERATION": "False",
    "ENABLE_VERSION_UPDATE_CHECK": "false",
    "ANONYMIZED_TELEMETRY": "false",
    "SCARF_NO_ANALYTICS": "true",
    "DO_NOT_TRACK": "true",
    "WEBUI_SECRET_KEY": "openwebui-example-secret",
}

ISSUE_KEY = (
    "from django.contrib.auth import get_user_model; from streaming.models import ApiKey; "
    f"print(ApiKey.issue(get_user_model().objects.get(username={USERNAME!r}), 'openwebui')[1])"
)


@contextlib.contextmanager
def openwebui(executable: str, workdir: Path, api_base: str, api_key: str) -> Iterator[str]:
    """OpenWebUI serving on a free loopback port with its data in ``workdir``; yields its URL."""
    port = free_port()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **OWUI_ENV,
        "DATA_DIR": str(workdir / "data"),
        "OPENAI_API_BASE_URL": api_base,
        "OPENAI_API_KEY": api_key,
    }
    base = f"http://127.0.0.1:{port}"
    with open(workdir / "openwebui.log", "wb") as log:
        process = subprocess.Popen(
            [executable, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # Its first start runs its migrations and imports a lot: a minute on a slow machine.
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((workdir / "openwebui.log").read_text()[-4000:])
                time.sleep(1)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def version(executable: str) -> str:
    python = Path(executable).with_name("python")
    return subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('open-webui'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@contextlib.contextmanager
def chromium() -> Iterator[BrowserContext]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        )
        try:
            yield browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-US")
        finally:
            browser.close()


def first_visit(page: Page, owui: str) -> None:
    page.goto(owui)
    # Its first visit shows the release notes over the chat.
    page.get_by_role("button", name="Okay, Let's Go!").click(timeout=60_000)


def ask(page: Page, owui: str, question: str) -> None:
    """A new chat with our model, the question sent, back when the answer has streamed."""
    page.goto(f"{owui}/")
    page.click("#model-selector-model-button")
    page.get_by_role("option").filter(has_text=re.compile(rf"^\s*{MODEL}\s*$")).first.click()
    page.click("#chat-input")
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    # The answer's container once the stream has started; a Stop button until it has ended.
    page.locator("#response-content-container").wait_for(timeout=120_000)
    page.get_by_role("button", name="Stop").wait_for(state="detached", timeout=120_000)
    page.get_by_role("button", name=re.compile(r"^Toggle \d+ sources?$")).click()
    page.wait_for_timeout(1000)  # the fade-in of the last tokens and the list


def seen(page: Page) -> dict[str, object]:
    """What the answer shows: the inline chips, OpenWebUI's sources list, the links in the text."""
    message = page.locator("#response-content-container").last
    return {
        "chips": message.locator("button[aria-label^='View source:']:not([id^=source-])").evaluate_all(
            "els => els.map(e => e.textContent.trim())"
        ),
        "sources list": page.locator("button[id^=source-]").evaluate_all(
            "els => els.map(e => e.textContent.trim())"
        ),
        "links": message.locator("a").evaluate_all("els => els.map(e => [e.textContent.trim(), e.href])"),
    }


def drive(owui: str, ours: str, shots: Path) -> dict[str, object]:
    """Ask the questions in OpenWebUI's chat; screenshots of the answers and of a source."""
    found: dict[str, object] = {}
    with chromium() as context:
        page = context.new_page()
        # Logged in to our server too, so a click on one of our source links shows the page
        # itself rather than our login form.
        page.goto(f"{ours}/accounts/login/")
        page.fill("input[name=username]", USERNAME)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"^(?!.*/accounts/login/)"))

        first_visit(page, owui)
        ask(page, owui, QUESTION)
        page.screenshot(path=shots / "openwebui-citations.png")
        found[QUESTION] = seen(page)
        page.get_by_role("button", name="View source:").first.click()
        page.get_by_role("dialog").wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=shots / "openwebui-source-modal.png")
        found["modal"] = page.get_by_role("dialog").inner_text()
        page.keyboard.press("Escape")

        # A source without a URL of its own: the annotation links to our source page.
        ask(page, owui, URLLESS_QUESTION)
        found[URLLESS_QUESTION] = seen(page)
        page.screenshot(path=shots / "openwebui-our-source-link.png")
        page.get_by_role("button", name=re.compile(r"^View source: EHBO")).first.click()
        dialog = page.get_by_role("dialog")
        with context.expect_page() as opened:
            dialog.locator(f"a[href^='{ours}/sources/']").first.click()
        source_page = opened.value
        source_page.wait_for_load_state()
        found["our page"] = source_page.url
        source_page.screenshot(path=shots / "openwebui-source-page.png")
    return found


def drive_out_of_order(owui: str, shots: Path) -> dict[str, object]:
    """The scripted answer cites [2] before [1]: what OpenWebUI pairs with each marker."""
    with chromium() as context:
        page = context.new_page()
        first_visit(page, owui)
        ask(page, owui, OUT_OF_ORDER_QUESTION)
        page.screenshot(path=shots / "openwebui-out-of-order.png")
        return {OUT_OF_ORDER_QUESTION: seen(page)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owui", default="/work/owui-venv/bin/open-webui", help="open-webui executable")
    parser.add_argument("--shots", default=str(IMAGES), help="where the screenshots go (docs/images)")
    parser.add_argument("--keep", action="store_true", help="keep the work files (logs, databases)")
    parser.add_argument(
        "--out-of-order", action="store_true", help="a scripted answer citing [2] before [1] instead"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="evi360-openwebui-"))
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    print(f"open-webui {version(args.owui)}; work files in {workdir}")
    (workdir / "evi360").mkdir()
    settings = {"EVI360_MODEL": "offline"}
    if args.out_of_order:
        script = workdir / "script.json"
        script.write_text(json.dumps({"deltas": OUT_OF_ORDER}), encoding="utf-8")
        scripted = "python:tests.support.browser_models:scripted"
        settings = {"EVI360_MODEL": scripted, "EVI360_TEST_SCRIPT": str(script)}
    with live_server(workdir / "evi360", asgi_server="uvicorn", **settings) as server:
        # The last line: the shell may print other things first.
        key = server.manage("shell", "-c", ISSUE_KEY).stdout.split()[-1]
        with openwebui(args.owui, workdir / "owui", f"{server.base}/v1", key) as owui:
            print(f"EVI 360 at {server.base}, OpenWebUI at {owui}")
            if args.out_of_order:
                found = drive_out_of_order(owui, shots)
            else:
                found = drive(owui, server.base, shots)
    print(json.dumps(found, indent=2, ensure_ascii=False))
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
