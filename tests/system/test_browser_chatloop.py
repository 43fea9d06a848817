"""The chat page's loop in Chromium (issue #21): 👍/👎 under a finished answer (👎 with reasons and
a comment), by mouse and by keyboard alone, copy as Markdown with its sources, and Regenerate;
all of it kept on the server and shown again when the conversation is reopened."""

from __future__ import annotations

import contextlib
import json
import sqlite3

import httpx
import pytest

from tests.support import chromium
from tests.support.browser_models import set_script
from tests.support.pages import logged_in, screenshot

chromium.require_chromium()

from playwright.sync_api import Page, expect  # noqa: E402

# browser, script_file and scripted_server are the conftest.py fixtures test_browser.py uses too.


@pytest.fixture(scope="module")
def server(scripted_server, tmp_path_factory):
    kb = tmp_path_factory.mktemp("kb-chatloop")
    # No URL of its own: a copied answer links it to our page of it, at the passage.
    (kb / "zekeringshaak.md").write_text(
        "---\ntitle: Zekeringshaken op steigers\nlanguage: nl\n---\n"
        "# Zekeringshaken\n\nEen zekeringshaak op een steiger wordt elk jaar gekeurd.\n",
        encoding="utf-8",
    )
    scripted_server.manage("load_knowledge_base", str(kb))
    return scripted_server


def ask_and_wait(page: Page, text: str, language: str) -> None:
    page.select_option("#language", language)
    page.fill("[data-testid=question]", text)
    page.press("[data-testid=question]", "Enter")
    expect(page.locator("[data-testid=copy]")).to_be_visible()  # shown once the answer ended


def api(server, path: str) -> dict:
    response = httpx.get(f"{server.base}{path}", headers={"Authorization": f"Bearer {server.token()}"})
    return response.json()


def latest_session(server) -> dict:
    return api(server, "/api/v1/stream/sessions/")["results"][0]


def feedback_row(server, session_id: str) -> tuple | None:
    """The feedback row itself, read from the live server's database."""
    with contextlib.closing(sqlite3.connect(server.workdir / "live.sqlite3")) as db:
        return db.execute(
            "SELECT rating, reasons, comment FROM streaming_answerfeedback WHERE session_id = ?",
            (session_id.replace("-", ""),),
        ).fetchone()


def test_thumbs_up_then_withdraw(browser, server):
    page = logged_in(browser, server)
    ask_and_wait(page, "How heavy may I lift?", "en")
    up = page.locator("[data-testid=feedback-up]")
    expect(up).to_have_attribute("aria-label", "Good answer")
    expect(page.locator("[data-testid=feedback-down]")).to_have_attribute("aria-label", "Bad answer")
    expect(up).to_have_attribute("aria-pressed", "false")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".action-note")).to_have_text("Thank you for your feedback.")
    session = latest_session(server)
    assert session["feedback"]["rating"] == "up"
    assert feedback_row(server, session["id"]) == ("up", "[]", "")
    up.click()  # pressed again: withdrawn
    expect(up).to_have_attribute("aria-pressed", "false")
    expect(page.locator(".action-note")).to_have_text("Your feedback was withdrawn.")
    assert feedback_row(server, session["id"]) is None
    assert latest_session(server)["feedback"] is None


def focused(page: Page) -> str | None:
    return page.evaluate("document.activeElement?.dataset.testid ?? document.activeElement?.tagName")


def test_thumbs_down_with_reasons_and_a_comment_by_keyboard_alone_in_dutch(browser, server):
    page = logged_in(browser, server, locale="nl-NL")
    ask_and_wait(page, "Hoe zwaar mag ik tillen?", "nl")
    down = page.locator("[data-testid=feedback-down]")
    expect(down).to_have_attribute("aria-label", "Slecht antwoord")
    expect(page.locator("[data-testid=regenerate]")).to_have_text("Opnieuw genereren")
    expect(page.locator("[data-testid=copy]")).to_have_text("Kopiëren")
    # From the question box backwards: Regenerate, then 👎.
    page.focus("[data-testid=question]")
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "regenerate"
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "feedback-down"
    page.keyboard.press("Enter")
    form = page.locator("[data-testid=feedback-form]")
    expect(form).to_be_visible()
    expect(form.locator("legend")).to_have_text("Wat was er mis?")
    expect(down).to_have_attribute("aria-expanded", "true")
    # Escape closes the form, the focus is back on 👎, nothing was sent.
    page.keyboard.press("Escape")
    expect(form).to_have_count(0)
    assert focused(page) == "feedback-down"
    session = latest_session(server)
    assert feedback_row(server, session["id"]) is None
    # Again, this time sent: Space ticks, Tab moves on.
    page.keyboard.press("Space")
    expect(form).to_be_visible()
    assert page.evaluate("document.activeElement.value") == "incorrect"
    page.keyboard.press("Space")  # incorrect
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.value") == "wrong_sources"
    page.keyboard.press("Space")
    for _ in range(3):  # wrong_language, other, the comment
        page.keyboard.press("Tab")
    assert focused(page) == "TEXTAREA"
    page.keyboard.type("De bron gaat over iets anders.")
    page.keyboard.press("Tab")
    assert focused(page) == "feedback-send"
    page.keyboard.press("Enter")
    expect(form).to_have_count(0)
    expect(down).to_have_attribute("aria-pressed", "true")
    assert focused(page) == "feedback-down"
    expect(page.locator(".action-note")).to_have_text("Bedankt voor uw feedback.")
    rating, reasons, comment = feedback_row(server, session["id"])
    assert (rating, json.loads(reasons), comment) == (
        "down",
        ["incorrect", "wrong_sources"],
        "De bron gaat over iets anders.",
    )


def test_copy_puts_the_answer_and_its_sources_on_the_clipboard(browser, server, script_file):
    set_script(script_file, deltas=["Keur de zekeringshaak [1]", " elk jaar [2]."])
    page = logged_in(browser, server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    ask_and_wait(page, "Hoe vaak wordt een zekeringshaak op een steiger gekeurd?", "nl")
    page.focus("[data-testid=copy]")
    page.keyboard.press("Enter")  # the keyboard, as a click
    expect(page.locator(".action-note")).to_have_text("Gekopieerd naar het klembord.")
    copied = page.evaluate("navigator.clipboard.readText()")
    citations = latest_session(server)["citations"]
    lines = []
    for citation in citations:
        source = citation["source"]
        url = (
            source["url"]
            or f"{server.base}/sources/{source['id']}?passage={source['passage']}#passage-{source['passage']}"
        )
        lines.append(f"- [{citation['marker']}] {source['title']} — {url}")
    assert copied == "Keur de zekeringshaak [1] elk jaar [2].\n\n**Bronnen**\n\n" + "\n".join(lines) + "\n"
    assert f"Zekeringshaken op steigers — {server.base}/sources/" in copied


def test_regenerate_keeps_both_answers_and_reload_shows_them(browser, server, script_file):
    set_script(script_file, deltas=["Eerste antwoord."])
    page = logged_in(browser, server)
    ask_and_wait(page, "Wat zegt de richtlijn over tillen?", "nl")
    first = latest_session(server)
    set_script(script_file, deltas=["Tweede antwoord."])
    page.click("[data-testid=regenerate]")
    turns = page.locator(".turn")
    expect(turns).to_have_count(2)
    expect(page.locator("[data-testid=answer]")).to_have_text("Tweede antwoord.")
    expect(page.locator("[data-testid=copy]")).to_be_visible()
    expect(turns.nth(0).locator(".answer")).to_have_text("Eerste antwoord.")
    expect(turns.nth(0)).to_have_class("turn regenerated")
    expect(turns.nth(0).locator(".regenerated-note")).to_be_visible()
    expect(turns.nth(1).locator(".question")).to_have_text("Wat zegt de richtlijn over tillen?")
    # One Regenerate button: under the newest answer.
    expect(page.locator(".regenerate")).to_have_count(1)
    expect(turns.nth(1).locator(".regenerate")).to_have_count(1)
    second = latest_session(server)
    assert second["id"] != first["id"] and second["regenerates"] == first["id"]
    assert second["conversation_id"] == first["conversation_id"]
    assert second["query"] == first["query"]
    page.click("[data-testid=feedback-up]")
    expect(page.locator("[data-testid=feedback-up]")).to_have_attribute("aria-pressed", "true")
    page.click("[data-testid=feedback-down]")  # the reasons' form open, for the screenshot
    expect(page.locator("[data-testid=feedback-form]")).to_be_visible()
    screenshot(page, "chat-feedback-regenerate.png")
    page.click("[data-testid=feedback-cancel]")
    expect(page.locator("[data-testid=feedback-form]")).to_have_count(0)
    # Reopened from its link: both answers, the earlier marked, the 👍 still pressed.
    page.reload()
    expect(turns).to_have_count(2)
    expect(turns.nth(0)).to_have_class("turn regenerated")
    expect(turns.nth(1).locator(".answer")).to_have_text("Tweede antwoord.")
    expect(turns.nth(1).locator(".feedback-up")).to_have_attribute("aria-pressed", "true")
    expect(turns.nth(0).locator(".feedback-up")).to_have_attribute("aria-pressed", "false")
    expect(page.locator(".regenerate")).to_have_count(1)
    expect(turns.nth(1).locator(".regenerate")).to_have_count(1)
    detail = api(server, f"/api/v1/conversations/{first['conversation_id']}")
    assert [t["regenerates"] for t in detail["turns"]] == [None, first["id"]]


def test_a_failed_answer_can_be_regenerated(browser, server, script_file):
    set_script(script_file, deltas=["Bijna", " klaar"], fail_after=1)
    page = logged_in(browser, server, locale="en-GB")
    page.select_option("#language", "en")
    page.fill("[data-testid=question]", "What about ladders?")
    page.press("[data-testid=question]", "Enter")
    expect(page.locator("[data-testid=error]")).to_be_visible()
    expect(page.locator("[data-testid=feedback-up]")).to_have_count(0)  # feedback: finished answers only
    set_script(script_file, deltas=["Ladders stand firm."])
    regenerate = page.locator("[data-testid=regenerate]")
    expect(regenerate).to_have_text("Regenerate")
    regenerate.click()
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator("[data-testid=answer]")).to_have_text("Ladders stand firm.")
    expect(page.locator(".turn").nth(0).locator(".regenerated-note")).to_contain_text("Answered again below")
    failed, again = api(server, "/api/v1/stream/sessions/?page_size=2")["results"][::-1]
    assert failed["status"] == "error" and again["status"] == "completed"
    assert again["regenerates"] == failed["id"]
