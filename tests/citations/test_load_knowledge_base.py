"""The load_knowledge_base command and the service behind it."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from citations.models import Chunk, Source
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
    with pytest.raises(CommandError, match=r"no \.md or \.txt files"):
        load(tmp_path)
