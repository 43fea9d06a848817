"""The knowledge base in the admin: each source's embedding status, passages' vectors."""

import pytest

from citations.models import Chunk, ChunkVector, IndexVersion, Source

pytestmark = pytest.mark.django_db
SOURCES = "/admin/citations/source/"


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="a-long-pass-123"))
    return client


def test_each_source_shows_how_many_passages_are_embedded(staff, small_kb):
    ChunkVector.objects.filter(chunk__source__title="Noise").delete()
    page = staff.get(SOURCES).content.decode()
    assert "1/1 · all embedded" in page and "0/1 · 1 to embed" in page
    assert "Noise" in staff.get(SOURCES + "?embedding=incomplete").content.decode()
    complete = staff.get(SOURCES + "?embedding=complete").content.decode()
    assert "Tillen" in complete and ">Noise<" not in complete


def test_vectors_of_another_model_count_as_to_embed(staff, small_kb, settings):
    settings.EVI360_EMBEDDING_MODEL = "voyageai:voyage-3.5"
    assert staff.get(SOURCES).content.decode().count("0/1 · 1 to embed") == 3
    chunk = Chunk.objects.first()
    detail = staff.get(f"/admin/citations/chunk/{chunk.pk}/change/").content.decode()
    assert "local:use-multilingual-v3, 512 dimensions (not the configured model)" in detail


def test_dense_retrieval_off_is_said(staff, small_kb, settings):
    settings.EVI360_EMBEDDING_MODEL = "none"
    assert "dense retrieval off" in staff.get(SOURCES).content.decode()


def test_deleting_a_source_moves_the_version(staff, small_kb):
    version = IndexVersion.current()
    source = Source.objects.get(title="Noise")
    response = staff.post(f"/admin/citations/source/{source.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Source.objects.filter(title="Noise").exists()
    assert IndexVersion.current() > version
    assert not ChunkVector.objects.filter(chunk__source_id=source.pk).exists()
