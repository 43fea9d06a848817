"""PDF, DOCX and HTML files, built in the test, read into documents; bad files each get their reason."""

import pytest

from citations import formats
from citations.loader import DocumentError, parse_document
from tests.support.documents import (
    docx_bytes,
    encrypted_pdf_bytes,
    pdf_bytes,
    scanned_pdf_bytes,
    zip_bomb_docx_bytes,
)

LIFTING = (
    "Werknemers mogen niet meer dan 23 kilogram tillen zonder hulpmiddel. De werkgever zorgt voor "
    "tilhulpmiddelen en voorlichting over een goede tiltechniek. "
)
NOISE = "Boven 80 dB(A) stelt de werkgever gehoorbescherming ter beschikking aan iedere werknemer. "


def test_pdf_passages_carry_their_page_number():
    raw = pdf_bytes([LIFTING * 3, NOISE * 3], title="Tillen en geluid")
    doc = parse_document("upload:tillen.pdf", "tillen.pdf", raw)
    assert doc.title == "Tillen en geluid"
    assert doc.language == "nl"
    assert [(c.position, c.page) for c in doc.chunks] == [(0, 1), (1, 2)]
    assert "23 kilogram" in doc.chunks[0].text
    assert "80 dB(A)" in doc.chunks[1].text


def test_docx_headings_become_the_heading_path():
    raw = docx_bytes(
        [("h1", "Fysieke belasting"), ("p", LIFTING), ("h2", "Hulpmiddelen"), ("li", "Gebruik een tilhulp.")]
    )
    doc = parse_document("upload:fb.docx", "fb.docx", raw)
    assert doc.title == "Fysieke belasting"
    assert [(c.heading_path, c.page) for c in doc.chunks] == [
        ("Fysieke belasting", None),
        ("Fysieke belasting > Hulpmiddelen", None),
    ]
    assert doc.chunks[1].text == "- Gebruik een tilhulp."


def test_html_becomes_markdown_without_scripts_or_styles():
    raw = (
        b"<!DOCTYPE html><html><head><title>Geluid</title><style>p{color:red}</style></head><body>"
        b"<script>alert('x')</script><h1>Lawaai</h1><p>" + NOISE.encode() + b"</p>"
        b"<h2>Meten</h2><p>Meet het <b>geluidsniveau</b> op de werkplek.</p></body></html>"
    )
    doc = parse_document("upload:geluid.html", "geluid.html", raw)
    assert doc.title == "Geluid"
    assert [c.heading_path for c in doc.chunks] == ["Lawaai", "Lawaai > Meten"]
    text = " ".join(c.text for c in doc.chunks)
    assert "alert" not in text and "color" not in text and "<" not in text
    assert "**geluidsniveau**" in text


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        ("x.pdf", encrypted_pdf_bytes(LIFTING), "encrypted PDF"),
        ("scan.pdf", scanned_pdf_bytes(), "no text layer; OCR is not supported"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj <<garbage", "corrupt PDF"),
        ("broken.docx", docx_bytes([("p", LIFTING)])[:-200], "corrupt DOCX|not a DOCX"),
        ("bomb.docx", zip_bomb_docx_bytes(), "zip bomb"),
        ("liar.pdf", docx_bytes([("p", LIFTING)]), "not a PDF"),
        ("liar.docx", pdf_bytes([LIFTING]), "not a DOCX"),
        ("liar.html", pdf_bytes([LIFTING]), "not HTML"),
        ("liar.md", pdf_bytes([LIFTING]), "content is a PDF"),
        ("x.exe", b"MZ", "unsupported file type .exe"),
    ],
)
def test_bad_files_are_refused_with_their_reason(name, raw, reason):
    with pytest.raises(DocumentError, match=reason):
        parse_document(f"upload:{name}", name, raw)


def test_docx_unpacking_to_more_than_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(formats, "MAX_DOCX_UNCOMPRESSED", 10_000)
    with pytest.raises(DocumentError, match="unpacks to"):
        parse_document("upload:a.docx", "a.docx", docx_bytes([("p", LIFTING)]))


def test_pdf_with_more_pages_than_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(formats, "MAX_PDF_PAGES", 1)
    with pytest.raises(DocumentError, match="2 pages; the limit is 1"):
        parse_document("upload:a.pdf", "a.pdf", pdf_bytes([LIFTING, NOISE]))


def test_pdf_text_over_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(formats, "MAX_TEXT_CHARS", 100)
    with pytest.raises(DocumentError, match="text exceeds 100 characters"):
        parse_document("upload:a.pdf", "a.pdf", pdf_bytes([LIFTING * 3]))


def test_a_file_over_the_size_limit_is_refused(settings):
    settings.EVI360_MAX_UPLOAD_MB = 1
    with pytest.raises(DocumentError, match="larger than EVI360_MAX_UPLOAD_MB=1"):
        parse_document("upload:big.txt", "big.txt", b"a " * (600 * 1024))
