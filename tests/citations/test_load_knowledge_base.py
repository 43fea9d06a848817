"""The load_knowledge_base command and the service behind it."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from citations.models import Chunk, ChunkVector, IndexVersion, Source
from citations.retrieval import retrieve

pytestmark = pytest.mark.django_db


def load(*paths):
    out, err = StringIO(), StringIO()
    call_command("load_knowledge_base", *map(str, paths), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_without_a_path_loads_the_bundled_bilingual_corpus():
    out, err = load()
    assert err == ""
    assert Source.objects.count() >= 16
    assert set(Source.objects.values_list("language", flat=True)) == {"nl", "en"}
    assert Source.objects.filter(language="nl").count() > Source.objects.filter(language="en").count()
    assert Chunk.objects.count() > Source.objects.count()
    assert "0 skipped" in out


def test_reloading_unchanged_files_changes_nothing():
    load()
    before = list(Chunk.objects.order_by("id").values_list("id", flat=True))
    loaded_at = dict(Source.objects.values_list("id", "loaded_at"))
    out, _ = load()
    assert list(Chunk.objects.order_by("id").values_list("id", flat=True)) == before
    assert dict(Source.objects.values_list("id", "loaded_at")) == loaded_at
    assert "0 created, 0 updated" in out


def test_a_changed_file_replaces_its_chunks_and_the_index(write_doc):
    path = write_doc("kb/steiger.md", "# Steigers\n\nEen steiger wordt gekeurd door een deskundige.\n")
    load(path)
    source = Source.objects.get()
    assert [c.title for c in retrieve("steiger", "nl")] == ["Steigers"]

    path.write_text(
        "# Steigers\n\nEen rolsteiger heeft vergrendelde wielen.\n\n## Meer\n\nKantplanken horen erbij.\n"
    )
    out, _ = load(path)
    assert "1 updated" in out
    assert Source.objects.get().pk == source.pk
    assert Chunk.objects.filter(source=source).count() == 2
    assert retrieve("gekeurd deskundige", "nl") == []
    assert [c.text for c in retrieve("vergrendelde wielen", "nl")] == [
        "Een rolsteiger heeft vergrendelde wielen."
    ]


def test_bad_files_are_reported_by_name_and_skipped(write_doc, tmp_path):
    write_doc("kb/good.md", "# Goed\n\nEen goede tekst over valbeveiliging.\n")
    write_doc("kb/binary.md", b"\x00\x01\x02")
    write_doc("kb/empty.txt", "")
    write_doc("kb/latin.md", "hitte caf\xe9".encode("latin-1"))
    out, err = load(tmp_path / "kb")
    assert "1 created" in out and "3 skipped" in out
    for name, reason in [("binary.md", "binary file"), ("empty.txt", "empty"), ("latin.md", "UTF-8")]:
        assert name in err and reason in err
    assert list(Source.objects.values_list("title", flat=True)) == ["Goed"]
    assert Chunk.objects.count() == 1


def test_a_folder_without_documents_is_an_error(tmp_path):
    with pytest.raises(CommandError, match=r"no knowledge-base files \(\.md, \.txt, \.pdf"):
        load(tmp_path)


# --- Embedding at load time -------------------------------------------------------------------

MODEL = "local:use-multilingual-v3"


def vector_state() -> dict[int, tuple[str, bytes]]:
    return {v.chunk_id: (v.model, bytes(v.vector)) for v in ChunkVector.objects.all()}


def kb_state() -> tuple:
    return (
        sorted(Source.objects.values_list("origin", "content_hash")),
        sorted(Chunk.objects.values_list("id", "text")),
        vector_state(),
        IndexVersion.current(),
    )


def test_every_passage_is_embedded_with_the_configured_model_and_counted():
    out, _ = load()
    chunks = Chunk.objects.count()
    assert f"{chunks} chunks embedded with {MODEL}" in out
    assert ChunkVector.objects.filter(model=MODEL, dimensions=512).count() == chunks
    out, _ = load()
    assert f"0 chunks embedded with {MODEL}" in out


def test_a_changed_file_keeps_the_vectors_of_its_unchanged_passages(write_doc, tmp_path):
    body = "# Tillen\n\n## Gewicht\n\n" + "Til niet meer dan 23 kg. " * 30 + "\n\n## Hulpmiddelen\n\n"
    path = write_doc("kb/tillen.md", "---\nlanguage: nl\n---\n" + body + "Gebruik een tilhulp. " * 30 + "\n")
    load(tmp_path / "kb")
    kept = {Chunk.objects.get(heading_path="Tillen > Gewicht").vector.vector}
    path.write_text("---\nlanguage: nl\n---\n" + body + "Gebruik een takel. " * 30 + "\n", encoding="utf-8")
    out, _ = load(tmp_path / "kb")
    assert "1 chunks embedded" in out and "1 unchanged passages kept their vectors" in out
    assert {bytes(Chunk.objects.get(heading_path="Tillen > Gewicht").vector.vector)} == {
        bytes(v) for v in kept
    }


def test_a_change_of_model_re_embeds_everything_no_mixed_vectors(small_kb, settings, dense_state):
    settings.EVI360_EMBEDDING_MODEL = "python:tests.citations.test_load_knowledge_base:hashed"
    out, _ = load(next(iter(Source.objects.values_list("origin", flat=True))))
    assert f"{Chunk.objects.count()} chunks embedded with python:tests.citations" in out
    assert set(ChunkVector.objects.values_list("model", flat=True)) == {settings.EVI360_EMBEDDING_MODEL}
    assert set(ChunkVector.objects.values_list("dimensions", flat=True)) == {8}


def test_embed_knowledge_base_embeds_what_lacks_a_vector(small_kb):
    ChunkVector.objects.filter(chunk_id=Chunk.objects.first().id).delete()
    out = StringIO()
    call_command("embed_knowledge_base", stdout=out)
    assert f"1 chunks embedded with {MODEL}" in out.getvalue()
    version = IndexVersion.current()
    call_command("embed_knowledge_base", "--all", stdout=out)
    assert f"{Chunk.objects.count()} chunks embedded" in out.getvalue()
    assert IndexVersion.current() == version + 1


@pytest.mark.parametrize("command", ["load_knowledge_base", "embed_knowledge_base"])
def test_a_model_that_cannot_embed_leaves_the_knowledge_base_as_it_was(
    small_kb, write_doc, tmp_path, settings, dense_state, command
):
    write_doc("kb/new.md", "---\nlanguage: nl\n---\n# Nieuw\n\nEen nieuwe passage over trappen.\n")
    (tmp_path / "kb" / "tillen.md").write_text(
        "---\nlanguage: nl\n---\n# Tillen\n\nAnders nu.\n", encoding="utf-8"
    )
    before = kb_state()
    settings.EVI360_EMBEDDING_MODEL = "python:tests.citations.test_embeddings:broken"
    args = [str(tmp_path / "kb")] if command == "load_knowledge_base" else ["--all"]
    with pytest.raises(CommandError, match=r"no vectors today.*(unchanged|nothing was written)"):
        call_command(command, *args, stdout=StringIO(), stderr=StringIO())
    assert kb_state() == before


def test_with_dense_retrieval_off_nothing_is_embedded(settings, write_doc, tmp_path):
    settings.EVI360_EMBEDDING_MODEL = "none"
    write_doc("kb/a.md", "---\nlanguage: nl\n---\n# A\n\nTekst.\n")
    out, _ = load(tmp_path / "kb")
    assert "dense retrieval off" in out and not ChunkVector.objects.exists()
    with pytest.raises(CommandError, match="dense retrieval is off"):
        call_command("embed_knowledge_base", stdout=StringIO())


def test_a_provider_embeds_the_knowledge_base_through_its_sdk(embedding_provider, write_doc, tmp_path):
    upstream = embedding_provider.use("voyageai:voyage-3.5")
    write_doc("kb/a.md", "---\nlanguage: nl\n---\n# Trappen\n\nHoud de leuning vast op de trap.\n")
    out, _ = load(tmp_path / "kb")
    assert "1 chunks embedded with voyageai:voyage-3.5" in out
    assert [body["input_type"] for _, body in upstream.requests] == ["document"]
    assert ChunkVector.objects.get().dimensions == 64


def hashed():
    """An embedding model of 8 dimensions for tests of a change of model."""
    from pydantic_ai.embeddings import TestEmbeddingModel

    return TestEmbeddingModel(dimensions=8)


# --- Every format, with a counter and a summary -----------------------------------------------


def test_every_format_loads_with_a_counter_and_a_summary_of_what_was_skipped(write_doc, tmp_path, settings):
    from tests.support.documents import docx_bytes, pdf_bytes, scanned_pdf_bytes

    settings.EVI360_EMBEDDING_MODEL = "none"
    write_doc("kb/a.md", "# Steigers\n\nEen steiger wordt gekeurd door een deskundige.\n")
    write_doc(
        "kb/b.pdf", pdf_bytes(["Valbeveiliging boven 2,5 meter.", "Een vanglijn wordt jaarlijks gekeurd."])
    )
    write_doc("kb/c.docx", docx_bytes([("h1", "Tillen"), ("p", "Til nooit meer dan 23 kilogram alleen.")]))
    write_doc("kb/d.html", "<html><body><h1>Geluid</h1><p>Draag gehoorbescherming.</p></body></html>")
    write_doc("kb/e.pdf", scanned_pdf_bytes())
    write_doc("kb/f.docx", "not a zip at all")
    out = StringIO()
    err = StringIO()
    call_command("load_knowledge_base", str(tmp_path / "kb"), "--progress", stdout=out, stderr=err)
    out, err = out.getvalue(), err.getvalue()
    assert "[1/6] read a.md" in err and "[6/6] read f.docx" in err
    assert "4 loaded (4 created, 0 updated), 0 unchanged, 2 skipped" in out
    assert "e.pdf (no text layer; OCR is not supported)" in out
    assert "f.docx (not a DOCX" in out
    assert sorted(Source.objects.values_list("title", flat=True)) == ["B", "Geluid", "Steigers", "Tillen"]
    assert list(Chunk.objects.filter(source__title="B").values_list("page", flat=True)) == [1, 2]
    assert set(Chunk.objects.exclude(source__title="B").values_list("page", flat=True)) == {None}
    assert [c.title for c in retrieve("vanglijn", "nl")] == ["B"]

    out, err = load(tmp_path / "kb")
    assert "0 loaded (0 created, 0 updated), 4 unchanged, 2 skipped" in out
    assert "[1/6]" not in err  # no counter when stderr is no terminal
