"""The chat page in a real browser: Debian's headless Chromium driven by Playwright, against a real
daphne serving the app (offline model, and a scripted FunctionModel).

Screenshots of the page mid-stream and done are saved to var/test-artifacts/.
"""

from __future__ import annotations

import itertools
import re
import time

import httpx
import pytest

from tests.support import chromium
from tests.support.browser_models import MARKDOWN_DELTAS, set_script
from tests.support.live_server import live_server, scripted_live_server
from tests.support.pages import XSS, admin_logged_in, ask, logged_in, screenshot, violations, wait_done

chromium.require_chromium()

from playwright.sync_api import expect  # noqa: E402

# browser and scripted_server (the scripted model's; a source in it carries XSS) are
# tests/system/conftest.py's fixtures, script_file (what that model answers) tests/conftest.py's.


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory):
    with live_server(
        tmp_path_factory.mktemp("browser-offline"), EVI360_OFFLINE_TOKEN_DELAY_MS="40"
    ) as server:
        yield server


def sessions(server) -> list[dict]:
    headers = {"Authorization": f"Bearer {server.token()}"}
    return httpx.get(f"{server.base}/api/v1/stream/sessions/", headers=headers).json()["results"]


def wait_for_status(server, done, timeout: float = 10) -> list[dict]:
    """The sessions, once ``done(sessions)`` holds (the server records a disconnect promptly,
    but not in the same instant the browser closes the connection)."""
    deadline = time.monotonic() + timeout
    while not done(found := sessions(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_a_dutch_question_streams_in_with_citations_and_dutch_ui(browser, offline_server):
    page = logged_in(browser, offline_server)
    ask(page, "Hoe zwaar mag ik tillen?")
    answer = page.locator("[data-testid=answer]")
    lengths, panel_filled_while_streaming, shot = [], False, False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        streaming = "streaming" in (answer.get_attribute("class") or "")
        lengths.append(len(answer.inner_text()))
        if streaming and page.locator("[data-testid=citations] li").count() > 0:
            panel_filled_while_streaming = True
            if not shot and len(lengths) > 10:
                shot = bool(screenshot(page, "chat-mid-stream.png"))
        if not streaming:
            break
        time.sleep(0.05)
    grown = [b for a, b in itertools.pairwise(lengths) if b > a]
    assert len(grown) >= 3, lengths  # the text grew over several observations before done
    assert panel_filled_while_streaming
    assert page.locator("html").get_attribute("lang") == "nl"
    expect(page.locator("[data-testid=send]")).to_have_text("Versturen")
    expect(page.locator("[data-testid=citations] h2")).to_have_text("Bronnen")
    expect(answer).to_contain_text("kg")
    marker = answer.locator("a.marker").first
    expect(marker).to_have_text(re.compile(r"\[\d\]"))
    # The marker and its panel entry highlight each other.
    marker.hover()
    number = marker.get_attribute("data-marker")
    expect(page.locator(f"[data-testid=citations] li[data-marker='{number}']")).to_have_class(
        re.compile("highlight")
    )
    screenshot(page, "chat-done.png")
    assert sessions(offline_server)[0]["status"] == "completed"


def test_an_english_question_gets_english(browser, offline_server):
    page = logged_in(browser, offline_server, locale="nl-NL")
    expect(page.locator("[data-testid=send]")).to_have_text("Versturen")  # follows the browser at first
    ask(page, "What is the noise limit at work?")
    wait_done(page)
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.locator("[data-testid=send]")).to_have_text("Send")
    expect(page.locator("[data-testid=answer]")).to_contain_text("dB")


def test_markers_never_render_half(browser, scripted_server, script_file):
    set_script(
        script_file,
        deltas=["Til ", "max 23 kg [", "1", "] en ", "gebruik [", "2", "][", "1", "]."],
        delay=0.08,
    )
    page = logged_in(browser, scripted_server)
    page.evaluate(
        """() => { window.snapshots = []; new MutationObserver(() => {
             const a = document.querySelector('[data-testid=answer]');
             if (a) window.snapshots.push(a.textContent); })
           .observe(document.getElementById('conversation'), {subtree: true, childList: true, characterData: true}); }"""
    )
    ask(page, "Hoe zwaar mag ik tillen?", "nl")
    wait_done(page)
    snapshots = page.evaluate("window.snapshots")
    assert len(set(snapshots)) >= 5
    assert not [s for s in snapshots if re.search(r"\[\d*$", s)], snapshots
    expect(page.locator("[data-testid=answer]")).to_have_text("Til max 23 kg [1] en gebruik [2][1].")


def test_stop_cancels_the_stream(browser, scripted_server, script_file):
    set_script(script_file, deltas=["woord "] * 200, delay=0.05)
    page = logged_in(browser, scripted_server)
    ask(page, "Hoe zwaar mag ik tillen?", "nl")
    expect(page.locator("[data-testid=answer]")).to_contain_text("woord woord")
    page.click("[data-testid=stop]")
    expect(page.locator("[data-testid=stop]")).to_be_hidden()
    expect(page.locator(".status")).to_have_text("Gestopt.")
    assert (
        wait_for_status(scripted_server, lambda s: s[0]["status"] != "streaming")[0]["status"] == "cancelled"
    )
    assert page.evaluate("window.evi360.open") == 0


def test_asking_again_while_streaming_cancels_the_old_answer(browser, scripted_server, script_file):
    set_script(script_file, deltas=["woord "] * 100, delay=0.05)
    page = logged_in(browser, scripted_server)
    ask(page, "Eerste vraag over tillen", "nl")
    expect(page.locator("[data-testid=answer]")).to_contain_text("woord")
    set_script(script_file, deltas=["Tweede ", "antwoord."], delay=0.01)
    ask(page, "Tweede vraag over tillen", "nl")
    wait_done(page)
    expect(page.locator("[data-testid=answer]")).to_have_text("Tweede antwoord.")
    latest, previous = wait_for_status(scripted_server, lambda s: s[1]["status"] != "streaming")[:2]
    assert (latest["status"], previous["status"]) == ("completed", "cancelled")
    assert page.evaluate("window.evi360.open") == 0


def test_an_upstream_error_is_shown_and_retry_works(browser, scripted_server, script_file):
    set_script(
        script_file, deltas=["Eerst ", "dit ", "en ", "dat."], delay=0.02, fail_after=2, fail_once=True
    )
    page = logged_in(browser, scripted_server)
    ask(page, "Hoe zwaar mag ik tillen?", "nl")
    error = page.locator("[data-testid=error]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("De assistent is nu erg druk")
    page.click("[data-testid=retry]")
    wait_done(page)
    expect(page.locator("[data-testid=answer]")).to_have_text("Eerst dit en dat.")


def test_html_in_answers_and_sources_is_inert(browser, scripted_server, script_file):
    set_script(script_file, deltas=["Let op ", XSS, " bij valgevaar [1]", "."], delay=0.02)
    page = logged_in(browser, scripted_server)
    ask(page, "valgevaar tillen ladders", "nl")
    wait_done(page)
    expect(page.locator("[data-testid=citations] li")).not_to_have_count(0)
    assert page.evaluate("window.pwned") is None
    assert page.locator("#conversation img, #conversation script").count() == 0
    expect(page.locator("[data-testid=answer]")).to_contain_text("<script>window.pwned=1</script>")
    expect(page.locator("[data-testid=citations]")).to_contain_text("<img")


def test_fifty_questions_leave_no_event_source_open(browser, scripted_server, script_file):
    set_script(script_file, deltas=["Kort ", "antwoord [1]."], delay=0)
    page = logged_in(browser, scripted_server)
    for n in range(50):
        ask(page, f"Vraag {n} over tillen", "nl")
        page.wait_for_function(f"() => window.evi360.closed === {n + 1}", timeout=20_000)
    assert page.evaluate("[window.evi360.opened, window.evi360.open]") == [50, 0]
    assert page.locator(".turn").count() == 50
    assert page.locator("[data-testid=answer]").count() == 1


def conversation_ids(server) -> list[str]:
    headers = {"Authorization": f"Bearer {server.token()}"}
    body = httpx.get(f"{server.base}/api/v1/conversations/?page_size=100", headers=headers).json()
    return [c["id"] for c in body["results"]]


def test_conversations_in_the_sidebar(browser, offline_server):
    page = logged_in(browser, offline_server)
    items = page.locator("[data-testid=conversation-list] li")
    # The list loads after the page: count what the server holds, and wait until it is drawn.
    before = len(conversation_ids(offline_server))
    page.wait_for_function("() => window.evi360.listed > 0")
    expect(items).to_have_count(before)
    ask(page, "Hoe zwaar mag ik tillen?")
    wait_done(page)
    expect(items).to_have_count(before + 1)
    first = items.first
    expect(first).to_have_class(re.compile("active"))
    expect(first.locator("[data-testid=open-conversation]")).to_have_text(
        re.compile("^Hoe zwaar mag ik tillen")
    )
    dutch_id = first.get_attribute("data-id")
    assert page.evaluate("location.hash") == f"#conversation={dutch_id}"

    # A follow-up stays in the same conversation.
    ask(page, "En voor zwangere werknemers?")
    wait_done(page)
    expect(page.locator("#conversation .turn")).to_have_count(2)
    expect(items).to_have_count(before + 1)
    assert sessions(offline_server)[0]["conversation_id"] == dutch_id

    # A new one starts empty and appears at the top once asked.
    page.click("[data-testid=new-conversation]")
    expect(page.locator("#conversation .turn")).to_have_count(0)
    ask(page, "What is the noise limit at work?")
    wait_done(page)
    expect(items).to_have_count(before + 2)
    english_id = items.first.get_attribute("data-id")
    assert english_id != dutch_id

    # Opening the Dutch one shows its whole history with citations, in Dutch.
    page.locator(
        f"[data-testid=conversation-list] li[data-id='{dutch_id}'] [data-testid=open-conversation]"
    ).click()
    turns = page.locator("#conversation .turn")
    expect(turns).to_have_count(2)
    expect(turns.first.locator(".question")).to_have_text("Hoe zwaar mag ik tillen?")
    expect(turns.first.locator(".answer")).to_contain_text("kg")
    assert turns.first.locator(".citations li").count() > 0
    expect(turns.first.locator("a.marker").first).to_have_text(re.compile(r"\[\d\]"))
    assert page.locator("html").get_attribute("lang") == "nl"
    expect(page.locator(f"li[data-id='{dutch_id}']")).to_have_class(re.compile("active"))
    screenshot(page, "chat-conversations.png")

    # A link to it (reload) opens it again.
    page.reload()
    expect(page.locator("#conversation .turn")).to_have_count(2)

    # Delete asks first: dismissed, nothing happens; accepted, it is gone.
    messages = []

    def answer(dialog, accept):
        messages.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    page.locator(f"li[data-id='{dutch_id}'] [data-testid=delete-conversation]").click()
    expect(page.locator(f"li[data-id='{dutch_id}']")).to_have_count(1)
    assert dutch_id in conversation_ids(offline_server)
    page.once("dialog", lambda d: answer(d, True))
    page.locator(f"li[data-id='{dutch_id}'] [data-testid=delete-conversation]").click()
    expect(page.locator(f"li[data-id='{dutch_id}']")).to_have_count(0)
    expect(page.locator("#conversation .turn")).to_have_count(0)  # it was open
    assert "Hoe zwaar mag ik tillen?" in messages[0] and len(messages) == 2
    ids = conversation_ids(offline_server)
    assert dutch_id not in ids and english_id in ids


def test_a_stopped_turn_is_shown_as_stopped_in_its_conversation(browser, scripted_server, script_file):
    set_script(script_file, deltas=["woord "] * 200, delay=0.05)
    page = logged_in(browser, scripted_server)
    page.click("[data-testid=new-conversation]")
    ask(page, "Hoe zwaar mag ik tillen?", "nl")
    expect(page.locator("[data-testid=answer]")).to_contain_text("woord woord")
    page.click("[data-testid=stop]")
    wait_for_status(scripted_server, lambda s: s[0]["status"] != "streaming")
    page.reload()
    turn = page.locator("#conversation .turn")
    expect(turn).to_have_count(1)
    expect(turn.locator(".turn-note")).to_have_text("Dit antwoord is gestopt voordat het af was.")
    expect(turn.locator(".answer")).to_contain_text("woord")


def test_the_answer_resumes_where_it_stopped_after_the_network_drops(browser, tmp_path_factory):
    from tests.support.tcp_proxy import cuttable_proxy

    workdir = tmp_path_factory.mktemp("browser-resume")
    script = workdir / "script.json"
    words = [f"w{i} " for i in range(80)]
    set_script(script, deltas=words, delay=0.05)
    with scripted_live_server(workdir, script, EVI360_RESUME_GRACE="15", EVI360_SSE_RETRY_MS="200") as server:
        port = int(server.base.rsplit(":", 1)[1])
        with cuttable_proxy(port) as proxy:
            proxied = type(server)(f"http://127.0.0.1:{proxy.port}", server.env, server.workdir)
            page = logged_in(browser, proxied)
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            ask(page, "Hoe zwaar mag ik tillen?", "nl")
            answer = page.locator("[data-testid=answer]")
            for seen in ("w10 ", "w30 ", "w50 "):
                expect(answer).to_contain_text(seen)
                proxy.cut()  # mid-answer: the page's EventSource reconnects with Last-Event-ID
            wait_done(page)
            text = answer.inner_text()
        assert text.split() == [w.strip() for w in words]  # nothing repeated, nothing lost
        assert page.evaluate("window.evi360.open") == 0
        (session,) = sessions(server)
        assert session["status"] == "completed" and session["answer"] == "".join(words)
        # The page read the events in four requests: the first, and one after each cut.
        assert [r for r in requests if r.endswith(f"/api/v1/stream/sessions/{session['id']}/events")] == [
            f"{proxied.base}/api/v1/stream/sessions/{session['id']}/events"
        ] * 4


def test_the_chat_page_keeps_to_its_content_security_policy(browser, offline_server):
    page = logged_in(browser, offline_server)
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    assert "script-src 'self'" in page.evaluate(
        "() => fetch('/').then(r => r.headers.get('content-security-policy'))"
    )
    ask(page, "Hoe zwaar mag ik tillen?")
    wait_done(page)
    page.locator("[data-testid=citations] li").first.wait_for()
    assert violations(page) == [] and refused == []
    # And the browser does refuse what the policy forbids (and the watcher sees it).
    page.evaluate(
        """document.body.insertAdjacentHTML("beforeend", '<img src="/x" onerror="window.pwned=1">')"""
    )
    page.wait_for_function("() => window.cspViolations.length > 0")
    assert violations(page)[0].startswith("script-src-attr")
    assert page.evaluate("window.pwned") is None


def test_the_api_keys_page_asks_before_it_revokes_without_inline_script(browser, offline_server):
    page = logged_in(browser, offline_server)
    page.goto(f"{offline_server.base}/settings/keys/")
    page.fill("input[name=name]", "OpenWebUI")
    page.click("text=Create key")
    expect(page.locator("[data-testid=new-key]")).to_be_visible()
    assert violations(page) == []

    asked = []

    def answer(dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    # Dismissed: nothing is sent.
    page.once("dialog", lambda d: answer(d, False))
    page.click("[data-testid=logout-everywhere] button")
    page.wait_for_timeout(300)
    assert asked == ["Log out of the API everywhere?"]
    expect(page.locator("[data-testid=logged-out]")).to_have_count(0)
    page.once("dialog", lambda d: answer(d, False))
    page.click("button[name=revoke]")
    expect(page.locator("button[name=revoke]")).to_have_count(1)
    assert asked[-1] == "Revoke this key?"

    # Accepted: the form is sent.
    page.once("dialog", lambda d: answer(d, True))
    page.click("[data-testid=logout-everywhere] button")
    expect(page.locator("[data-testid=logged-out]")).to_be_visible()
    assert violations(page) == []


def test_the_api_docs_render_under_the_policy(browser, offline_server):
    page = logged_in(browser, offline_server)
    page.goto(f"{offline_server.base}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("EVI 360 API")
    expect(page.locator(".opblock").first).to_be_visible()
    page.locator(".opblock-summary").first.click()  # an operation opens (React, no inline script)
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert violations(page) == []


def test_the_admin_keeps_to_the_policy(browser, offline_server):
    offline_server.create_superuser()
    # One stream in the log (read to its end), so the list shows a status badge.
    headers = {"Authorization": f"Bearer {offline_server.token()}"}
    body = {"query": "Hoe zwaar mag ik tillen?"}
    httpx.post(f"{offline_server.base}/api/v1/stream/query", json=body, headers=headers, timeout=30)
    page = admin_logged_in(browser, offline_server)
    expect(page.locator("#site-name")).to_be_visible()
    assert violations(page) == []
    for path, ready in [
        ("/admin/streaming/streamsession/", ".status-badge"),
        ("/admin/streaming/streamsession/dashboard/", "[data-testid=dashboard] svg"),
        ("/admin/citations/source/", ".embedding-done, .embedding-missing"),
        ("/admin/auth/user/add/", "#id_username"),
    ]:
        page.goto(offline_server.base + path)
        page.locator(ready).first.wait_for()
        assert violations(page) == [], path
    page.goto(f"{offline_server.base}/admin/streaming/streamsession/")
    badge = page.locator(".status-badge").first
    assert badge.evaluate("el => getComputedStyle(el).color") == "rgb(255, 255, 255)"  # admin.css
    page.locator("#changelist-form input.action-select").first.check()  # the admin's own script
    expect(page.locator(".action-counter")).to_contain_text("1 of")
    assert violations(page) == []


# Records, on every change of the answer and on every animation frame, its visible text, whether a
# table was there before `done`, whether anything followed the cursor, and the most redraws seen
# between two frames.
RECORD_ANSWER = """() => {
  const rec = (window.recorded = { texts: [], tableBeforeDone: false, afterCursor: [], mostPerFrame: 0, frames: 0 });
  const look = () => {
    const a = document.querySelector('[data-testid=answer]');
    if (!a) return;
    const text = a.innerText;
    if (rec.texts[rec.texts.length - 1] !== text) rec.texts.push(text);
    const cursor = a.querySelector('.cursor');
    if (!a.classList.contains('streaming') || !cursor) return;
    if (a.querySelector('table')) rec.tableBeforeDone = true;
    const rest = document.createRange();
    rest.setStartAfter(cursor);
    rest.setEnd(a, a.childNodes.length);
    if (rest.toString().trim()) rec.afterCursor.push(text);
  };
  new MutationObserver(look).observe(document.getElementById('conversation'),
    { subtree: true, childList: true, characterData: true });
  let seen = window.evi360.renders;
  const frame = () => {
    look();
    rec.frames += 1;
    rec.mostPerFrame = Math.max(rec.mostPerFrame, window.evi360.renders - seen);
    seen = window.evi360.renders;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}"""
RAW_MARKDOWN = re.compile(r"#|\*\*|\||`|~~|\]\(|(^|\n)\s*(\d+\.|[-*>])\s")


def test_markdown_renders_as_it_streams_and_never_shows_raw_syntax(browser, scripted_server, script_file):
    set_script(script_file, deltas=MARKDOWN_DELTAS, delay=0.08)
    page = logged_in(browser, scripted_server)
    page.evaluate(RECORD_ANSWER)
    ask(page, "Hoe zwaar mag ik tillen?", "nl")
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=answer]');"
        " return a && (a.querySelector('table') || !a.classList.contains('streaming')); }"
    )
    screenshot(page, "chat-markdown-streaming.png")
    wait_done(page)
    recorded = page.evaluate("window.recorded")
    answer = page.locator("[data-testid=answer]")
    assert recorded["tableBeforeDone"]
    assert [t for t in recorded["texts"] if RAW_MARKDOWN.search(t)] == []
    assert len(recorded["texts"]) >= 8  # it grew as it streamed, formatted all along
    assert recorded["afterCursor"] == []  # the cursor stayed at the end
    assert recorded["mostPerFrame"] <= 1 and page.evaluate("window.evi360.renders") >= 8
    expect(answer.locator("h2")).to_have_text("Tillen op het werk")
    expect(answer.locator("ol > li")).to_have_count(2)
    expect(answer.locator("ol > li strong").first).to_have_text("maximaal 23 kg")
    expect(answer.locator("table th")).to_have_text(["Last", "Advies"])
    expect(answer.locator("table td")).to_have_count(4)
    expect(answer.locator("pre code")).to_have_text("max_kg = 23")
    expect(answer.locator("p strong")).to_have_text("veiligheid")
    assert page.locator("[data-testid=answer] .cursor").count() == 0
    # The markers still link to their source in the panel.
    markers = answer.locator("a.marker")
    expect(markers).to_have_count(2)
    assert violations(page) == []  # the vendored scripts and the rendering keep to the CSP
    target = markers.first.get_attribute("href")
    assert re.fullmatch(r"#cite-[0-9a-f-]+-1", target)
    expect(page.locator(f"[data-testid=citations] li{target}")).to_have_count(1)
    screenshot(page, "chat-markdown.png")
    # Drawn again from the conversation's history, it looks the same.
    html = answer.inner_html()
    page.reload()
    expect(page.locator("[data-testid=answer] table")).to_have_count(1)
    assert page.locator("[data-testid=answer]").inner_html() == html


MARKDOWN_XSS = [
    'Let op [klik](javascript:window.pwned=1) en <a href="javascript:window.pwned=1">dit</a> ',
    '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script> <javascript:window.pwned=1> ',
    "[data](data:text/html,<script>window.pwned=1</script>) ![x](https://kb.example/x.png) ",
    '<iframe src="javascript:window.pwned=1"></iframe> [goed](https://kb.example/ok) [1][2].',
]


def test_markdown_and_sources_with_script_stay_inert(browser, scripted_server, script_file, tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "steigers.md").write_text(
        f"---\ntitle: 'Steigers {XSS}'\nlanguage: nl\n---\n# Steigers\n\nEen **steiger** wordt "
        "`dagelijks` gecontroleerd door de ploegbaas.\n\n| Wie | Wat |\n|---|---|\n| Ploegbaas | keurt |\n\n"
        f"{XSS} [klik](javascript:window.pwned=1)\n",
        encoding="utf-8",
    )
    scripted_server.manage("load_knowledge_base", str(kb))
    # A source's URL as only a broken database could hold it (the loader refuses it).
    scripted_server.manage(
        "shell",
        "-c",
        "from citations.models import Source; "
        "Source.objects.filter(title__startswith='Steigers').update(url='javascript:window.pwned=1')",
    )
    set_script(script_file, deltas=MARKDOWN_XSS, delay=0.02)
    page = logged_in(browser, scripted_server)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    ask(page, "Hoe vaak wordt een steiger gecontroleerd door de ploegbaas?", "nl")
    wait_done(page)
    panel = page.locator("[data-testid=citations]")
    expect(panel.locator("li")).to_have_count(2)
    assert page.evaluate("window.pwned") is None and dialogs == [] and violations(page) == []
    assert page.locator("#conversation :is(img, script, iframe, [onerror])").count() == 0
    hrefs = page.eval_on_selector_all(
        "#conversation a[href]", "links => links.map(a => a.getAttribute('href'))"
    )
    our_page = r"/sources/\d+\?passage=(?P<p>\d+)#passage-(?P=p)$"
    assert hrefs and all(re.match(rf"(https?://|#cite-|{our_page})", href) for href in hrefs), hrefs
    good = page.locator("[data-testid=answer] a", has_text="goed")
    assert (good.get_attribute("target"), good.get_attribute("rel")) == ("_blank", "noopener noreferrer")
    expect(page.locator("[data-testid=answer]")).to_contain_text("<script>window.pwned=1</script>")
    # The source without an http(s) URL links to our page of it; its snippet is plain text.
    steigers = panel.locator("li", has_text="Steigers")
    expect(steigers.locator(".snippet")).to_contain_text("Een steiger wordt dagelijks gecontroleerd")
    expect(steigers.locator(".snippet")).not_to_contain_text("**")
    expect(steigers.locator(".snippet")).not_to_contain_text("|")
    with page.context.expect_page() as opened:
        steigers.locator("a.title").click()
    source_page = opened.value
    source_page.wait_for_load_state()
    assert re.search(our_page, source_page.url)
    expect(source_page.locator("h1")).to_contain_text("Steigers")
    # The cited passage highlighted, and its table rendered.
    expect(source_page.locator(".passage.cited")).to_contain_text("gecontroleerd door de ploegbaas")
    expect(source_page.locator(".passage.cited table")).to_have_count(1)
    expect(source_page.locator("main")).to_contain_text("gecontroleerd door de ploegbaas")
    assert source_page.evaluate("window.pwned") is None and dialogs == []
