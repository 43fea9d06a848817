"""A PDF passage's page number wherever a citation is shown: the SSE citation event (the chat
page's sources panel reads it), the OpenAI sources block and the source page."""

from __future__ import annotations

import pytest

from citations.loader import parse_document
from citations.models import Chunk
from citations.retrieval import retrieve
from citations.services import load_document
from streaming.engine.events import CitationEvent
from streaming.engine.wire import compact_json, decode, encode
from streaming.openai.stream import sources_block
from tests.support.documents import pdf_bytes

FIRST = "Inleiding over veilig werken in de bouw. " * 10
SECOND = "Een vanglijn wordt elk jaar gekeurd door een deskundige. " * 10


@pytest.fixture
def pdf_source(db, settings):
    settings.EVI360_EMBEDDING_MODEL = "none"
    document = parse_document("upload:val.pdf", "val.pdf", pdf_bytes([FIRST, SECOND], title="Valbeveiliging"))
    load_document(document, lambda outcome: None)
    return Chunk.objects.get(page=2).source


def test_retrieval_gives_the_page(pdf_source):
    assert [(c.title, c.page) for c in retrieve("vanglijn", "nl")] == [("Valbeveiliging", 2)]


def test_the_wire_carries_the_page_and_reads_logs_without_it():
    event = CitationEvent(1, 7, "Valbeveiliging", "", "Een vanglijn", 70, 12)
    raw = encode(3, event).decode()
    data = raw.split("data: ", 1)[1].strip()
    assert decode("citation", data) == event
    older = {"marker": 1, "source": {"id": 7, "title": "T", "url": "", "snippet": "s", "passage": 70}}
    assert decode("citation", compact_json(older)).page is None


def test_the_openai_sources_block_names_the_page():
    citations = {
        1: CitationEvent(1, 7, "Valbeveiliging", "https://kb.example/val", "", 70, 12),
        2: CitationEvent(2, 8, "Tillen", "https://kb.example/tillen", "", 80),
    }
    block = sources_block("nl", citations, lambda source, passage: "unused")
    assert "- [1] [Valbeveiliging](https://kb.example/val), p. 12" in block
    assert "- [2] [Tillen](https://kb.example/tillen)\n" in block + "\n"


def test_the_source_page_shows_each_passage_page(pdf_source, client, user):
    client.force_login(user)
    html = client.get(f"/sources/{pdf_source.pk}").content.decode()
    assert '<p class="muted page">p. 1</p>' in html and '<p class="muted page">p. 2</p>' in html
