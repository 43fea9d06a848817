"""/sources/<id>: a knowledge-base document for logged-in users, its cited passage highlighted,
nothing of the document's own HTML or scripts alive."""

from __future__ import annotations

import re

import pytest

from citations.models import Chunk, Source

pytestmark = pytest.mark.django_db

EVIL = (
    "---\ntitle: <script>alert('t')</script> Evil\nurl: https://kb.example/evil\nlanguage: en\n---\n"
    "# Evil\n\nFirst <img src=x onerror=alert(1)> passage with [a link](javascript:alert(2)), "
    "[a good one](https://kb.example/ok), ![pixel](https://tracker.example/p.gif) and "
    "<a href='https://x.example' onclick='alert(3)'>raw</a> **bold**.\n"
)


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def evil(db, write_doc, tmp_path) -> Source:
    from citations.services import load_paths

    write_doc("evil/evil.md", EVIL)
    load_paths([tmp_path / "evil"])
    # The loader refuses such a URL; the admin or the database might not.
    Source.objects.filter(title__contains="Evil").update(url="javascript:alert(1)")
    return Source.objects.get(title__contains="Evil")


def test_anonymous_is_sent_to_login(client, small_kb):
    source = Source.objects.first()
    response = client.get(f"/sources/{source.pk}")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", ["/sources/999999", "/sources/abc", "/sources/-1", "/sources/" + "9" * 40])
def test_an_unknown_source_is_404(logged_in, small_kb, path):
    assert logged_in.get(path).status_code == 404


def test_only_get(logged_in, small_kb):
    assert logged_in.post(f"/sources/{Source.objects.first().pk}").status_code == 405


def test_the_cited_passage_is_highlighted(logged_in, small_kb):
    chunk = Chunk.objects.select_related("source").first()
    page = logged_in.get(f"/sources/{chunk.source_id}?passage={chunk.pk}").content.decode()
    assert chunk.source.title in page
    cited = re.search(rf'<section id="passage-{chunk.pk}" class="passage cited" aria-current="true">', page)
    assert cited, page
    assert page.count('class="passage cited"') == 1


@pytest.mark.parametrize("passage", ["", "x", "1e3", "<script>", "9" * 40])
def test_a_bad_passage_highlights_nothing(logged_in, small_kb, passage):
    chunk = Chunk.objects.first()
    response = logged_in.get(f"/sources/{chunk.source_id}", {"passage": passage})
    assert response.status_code == 200
    assert b"passage cited" not in response.content and b"<script>" not in response.content


def test_the_documents_html_and_links_stay_inert(logged_in, evil):
    page = logged_in.get(f"/sources/{evil.pk}").content.decode()
    main = page[page.index("<main>") :]
    assert "<script" not in main and "<img" not in main and "onerror" not in main.replace("onerror=", "")
    assert "&lt;script&gt;alert" in main  # the title, as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in main  # the document's tag, as text
    assert "javascript:" not in main.replace("[a link](javascript:alert(2))", "")
    assert '<a href="https://kb.example/ok">a good one</a>' in main
    assert "tracker.example/p.gif" not in re.findall(r'(?:src|href)="([^"]*)"', main)
    assert "<strong>bold</strong>" in main
    assert not re.search(r"<a [^>]*onclick", main)


def test_a_table_is_rendered_with_alignment_as_a_class():
    from streaming.web.documents import render_markdown

    html = render_markdown("| Last | kg |\n|:---|---:|\n| tillen | 23 |\n")
    assert "<table>" in html and '<td class="align-right">23</td>' in html
    assert "style=" not in html and "|" not in html
