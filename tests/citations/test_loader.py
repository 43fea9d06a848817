import pytest

from citations.loader import DocumentError, expand_paths, read_document


def test_front_matter_gives_title_url_and_language(write_doc):
    path = write_doc(
        "a.md",
        "---\ntitle: Geluid\nurl: https://example.org/geluid\nlanguage: nl\n---\n"
        "# Other\n\nTekst over lawaai.\n",
    )
    doc = read_document(path)
    assert (doc.title, doc.url, doc.language) == ("Geluid", "https://example.org/geluid", "nl")
    assert doc.chunks[0].text == "Tekst over lawaai."
    assert len(doc.content_hash) == 64


def test_title_from_first_heading_and_language_detected(write_doc):
    doc = read_document(
        write_doc("x.md", "# Working at height\n\nAlways use fall protection above 2.5 metres.\n")
    )
    assert doc.title == "Working at height"
    assert doc.language == "en"
    doc = read_document(write_doc("y.txt", "Werknemers moeten gehoorbescherming dragen bij veel lawaai.\n"))
    assert doc.title == "Y"
    assert doc.language == "nl"


def test_title_falls_back_to_file_name(write_doc):
    assert (
        read_document(write_doc("hitte-op-het-werk.txt", "Drink genoeg water.")).title == "Hitte op het werk"
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("bin.md", b"PK\x03\x04\x00\x00binary", "binary file"),
        ("empty.md", "", "empty document"),
        ("blank.md", "---\ntitle: x\n---\n   \n", "empty document"),
        ("latin1.md", "caf\xe9 hitte".encode("latin-1"), "not valid UTF-8"),
        ("fm.md", "---\ntitle: [unclosed\n---\nText here.\n", "invalid front matter"),
        ("lang.md", "---\nlanguage: de\n---\nText here.\n", "language 'de'"),
        ("url.md", "---\nurl: javascript:alert(1)\n---\nText here.\n", "url"),
        ("title.md", "---\ntitle: [1, 2]\n---\nText here.\n", "'title' must be text"),
        ("doc.pdf", "%PDF-1.4", "corrupt PDF"),
        ("doc.odt", "x", "unsupported file type .odt"),
    ],
)
def test_bad_files_are_refused_with_a_reason(write_doc, name, content, reason):
    with pytest.raises(DocumentError, match=reason.replace("(", r"\(")):
        read_document(write_doc(name, content))


def test_missing_file(tmp_path):
    with pytest.raises(DocumentError, match="no such file"):
        read_document(tmp_path / "nope.md")


def test_folders_expand_to_md_and_txt_files_in_order(write_doc, tmp_path):
    write_doc("b.md", "B")
    write_doc("sub/a.txt", "A")
    write_doc("sub/skip.odt", "P")
    assert [p.relative_to(tmp_path).as_posix() for p in expand_paths([tmp_path])] == ["b.md", "sub/a.txt"]
