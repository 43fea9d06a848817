"""Done means: a staff member drags a PDF guideline into the admin, watches it become `done`, and
a specialist's next question cites it with its page number (Chromium, daphne, the offline model,
the local embeddings; the web process's own worker thread processes the upload)."""

from __future__ import annotations

from tests.support import chromium
from tests.support.documents import pdf_bytes
from tests.support.live_server import live_server
from tests.support.pages import admin_logged_in, ask, logged_in, violations, wait_done

chromium.require_chromium()

from playwright.sync_api import expect  # noqa: E402

INTRO = "Deze richtlijn beschrijft veilig werken aan de gevel van een gebouw door de monteur. " * 4
LIFELINE = (
    "Een Zorbex-vanglijn wordt elk half jaar gekeurd door een deskundige. Een afgekeurde "
    "Zorbex-vanglijn wordt direct uit gebruik genomen. "
) * 4


def test_a_pdf_dragged_into_the_admin_is_cited_with_its_page(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("browser-upload")) as server, chromium.headless() as browser:
        server.create_superuser()
        admin = admin_logged_in(browser, server, "/admin/citations/upload/upload/")
        pdf = pdf_bytes([INTRO, LIFELINE], title="Gevelwerk")
        admin.set_input_files(
            "input[type=file]",
            files=[{"name": "gevelwerk.pdf", "mimeType": "application/pdf", "buffer": pdf}],
        )
        assert violations(admin) == []
        admin.click("input[type=submit]")
        admin.wait_for_url("**/admin/citations/upload/")
        # The list reloads itself while the file is processed: no click needed to see it done.
        admin.locator(".upload-done").wait_for(timeout=120_000)
        row = admin.locator("#result_list tbody tr").first
        expect(row).to_contain_text("gevelwerk.pdf")
        expect(row).to_contain_text("Gevelwerk")
        assert violations(admin) == []

        page = logged_in(browser, server)
        ask(page, "Hoe vaak wordt een Zorbex-vanglijn gekeurd?", "nl")
        wait_done(page)
        cited = page.locator("li[data-marker]", has_text="Gevelwerk").first
        expect(cited.locator(".page")).to_have_text(" p. 2")
        assert violations(page) == []
