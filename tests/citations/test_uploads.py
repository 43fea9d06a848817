"""Guidelines uploaded in the admin: real PDF and DOCX files through Django's test client,
processed in the background, then cited (offline model, local embeddings) with their page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from citations import uploads
from citations.models import Chunk, ChunkVector, Source, Upload
from tests.conftest import stream_query
from tests.support.documents import docx_bytes, encrypted_pdf_bytes, pdf_bytes, scanned_pdf_bytes

UPLOAD_URL = "/admin/citations/upload/upload/"
LIST_URL = "/admin/citations/upload/"

PAGE_1 = "Inleiding. Deze richtlijn gaat over veilig werken in de bouw en de rol van de werkgever. " * 3
PAGE_2 = (
    "Een vanglijn en een valstopapparaat worden elk jaar gekeurd door een deskundige. Een "
    "afgekeurde vanglijn wordt direct uit gebruik genomen en vervangen. "
) * 3


@pytest.fixture(autouse=True)
def _no_worker_thread(settings):
    """The tests run the worker themselves (uploads.run_pending), in their own transaction."""
    settings.EVI360_UPLOAD_WORKER = "command"
    settings.EVI360_EMBEDDING_MODEL = "local:use-multilingual-v3"


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("editor", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="add_source"), Permission.objects.get(codename="view_source")
    )
    return user


def upload(client, *files: tuple[str, bytes]):
    return client.post(UPLOAD_URL, {"files": [SimpleUploadedFile(name, raw) for name, raw in files]})


@pytest.mark.django_db
def test_a_user_without_the_permission_gets_403(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(UPLOAD_URL).status_code == 403
    assert upload(client, ("a.md", b"# A\n\nTekst.")).status_code == 403
    assert Upload.objects.count() == 0


@pytest.mark.django_db
def test_the_form_shows_and_the_list_offers_it(client, staff):
    client.force_login(staff)
    page = client.get(UPLOAD_URL)
    assert page.status_code == 200 and b'type="file"' in page.content and b"multiple" in page.content
    assert b"Upload files" in client.get(LIST_URL).content
    nothing = client.post(UPLOAD_URL, {})
    assert nothing.status_code == 200 and b"This field is required" in nothing.content
    assert Upload.objects.count() == 0


@pytest.mark.django_db(transaction=True)
async def test_an_uploaded_pdf_is_processed_in_the_background_and_cited_with_its_page(
    staff, user, access_token, async_client, client
):
    from asgiref.sync import sync_to_async

    def upload_and_process() -> None:
        client.force_login(staff)
        pdf = pdf_bytes([PAGE_1, PAGE_2], title="Valbeveiliging")
        docx = docx_bytes([("h1", "Tillen"), ("p", "Til nooit meer dan 23 kilogram alleen.")])
        response = upload(client, ("valbeveiliging.pdf", pdf), ("tillen.docx", docx))
        assert response.status_code == 302 and response["Location"] == LIST_URL
        # Queued, not processed in the request.
        assert sorted(Upload.objects.values_list("name", "status")) == [
            ("tillen.docx", "queued"),
            ("valbeveiliging.pdf", "queued"),
        ]
        listing = client.get(LIST_URL).content
        assert b"queued" in listing and b'http-equiv="refresh"' in listing
        assert uploads.run_pending() == 2
        pdf_row = Upload.objects.get(name="valbeveiliging.pdf")
        assert (pdf_row.status, pdf_row.reason, pdf_row.content) == ("done", "", None)
        assert pdf_row.chunk_count == 2 and pdf_row.source.title == "Valbeveiliging"
        assert list(pdf_row.source.chunks.values_list("page", flat=True)) == [1, 2]
        assert ChunkVector.objects.filter(chunk__source=pdf_row.source).count() == 2
        listing = client.get(LIST_URL).content  # the progress is in the rows: a reload shows it
        assert listing.count(b'class="upload-done"') == 2 and b'http-equiv="refresh"' not in listing

    await sync_to_async(upload_and_process)()
    auth = {"Authorization": f"Bearer {await sync_to_async(access_token)(user)}"}
    events = await stream_query(async_client, "Hoe vaak wordt een vanglijn gekeurd?", auth)
    citations = [data for _, kind, data in events if kind == "citation"]
    assert citations and citations[0]["source"]["title"] == "Valbeveiliging"
    assert citations[0]["source"]["page"] == 2
    chunk = await Chunk.objects.aget(pk=citations[0]["source"]["passage"])
    assert chunk.page == 2
    # The session's log (the chat page reloads a conversation from it) has the page too.
    session = await async_client.get(f"/api/v1/stream/sessions/{events[0][2]['session_id']}", headers=auth)
    assert session.json()["citations"][0]["source"]["page"] == 2


@pytest.mark.django_db
def test_bad_files_each_get_their_reason_and_nothing_is_half_loaded(client, staff, settings):
    settings.EVI360_MAX_UPLOAD_MB = 1
    client.force_login(staff)
    upload(
        client,
        ("locked.pdf", encrypted_pdf_bytes(PAGE_2)),
        ("scan.pdf", scanned_pdf_bytes()),
        ("broken.docx", docx_bytes([("p", PAGE_2)])[:-300]),
        ("big.txt", b"a " * (600 * 1024)),
        ("liar.pdf", docx_bytes([("p", PAGE_2)])),
        ("tool.exe", b"MZ"),
    )
    # Size and type are refused at once; the rest fail when processed.
    assert uploads.run_pending() == 4
    reasons = dict(Upload.objects.values_list("name", "reason"))
    assert set(Upload.objects.values_list("status", flat=True)) == {"failed"}
    assert "encrypted PDF" in reasons["locked.pdf"]
    assert reasons["scan.pdf"] == "no text layer; OCR is not supported"
    assert "DOCX" in reasons["broken.docx"]
    assert reasons["big.txt"] == "file is larger than EVI360_MAX_UPLOAD_MB=1"
    assert reasons["liar.pdf"].startswith("not a PDF")
    assert reasons["tool.exe"].startswith("unsupported file type .exe")
    assert Source.objects.count() == 0 and Chunk.objects.count() == 0
    assert not Upload.objects.exclude(content=None).exists()  # no bytes kept


@pytest.mark.django_db
def test_a_failure_while_storing_rolls_the_whole_file_back(client, staff, monkeypatch):
    from citations import services

    client.force_login(staff)
    upload(client, ("a.md", b"# A\n\n" + PAGE_2.encode()))

    def broken(outcome):
        raise RuntimeError("disk full")

    real = services.load_document
    monkeypatch.setattr(uploads, "load_document", lambda document, then: real(document, broken))
    uploads.run_pending()
    row = Upload.objects.get()
    assert (row.status, row.reason) == ("failed", "unexpected error (RuntimeError)")
    assert Source.objects.count() == 0 and Chunk.objects.count() == 0


@pytest.mark.django_db
def test_the_same_name_replaces_its_source_and_deleting_it_removes_chunks_and_vectors(client, staff):
    client.force_login(staff)
    upload(client, ("richtlijn.docx", docx_bytes([("h1", "Oud"), ("p", PAGE_1)])))
    uploads.run_pending()
    first = Source.objects.get()
    new = docx_bytes([("h1", "Nieuw"), ("p", PAGE_2)])
    upload(client, ("richtlijn.docx", new))
    upload(client, ("richtlijn.docx", new))
    uploads.run_pending()
    source = Source.objects.get()
    assert source.pk == first.pk and source.title == "Nieuw" and source.origin == "upload:richtlijn.docx"
    assert "vanglijn" in source.chunks.get().text
    assert Upload.objects.order_by("id").last().reason == "unchanged: this file was loaded before"

    source.delete()
    assert Chunk.objects.count() == 0 and ChunkVector.objects.count() == 0
    assert set(Upload.objects.values_list("source", flat=True)) == {None}  # the rows stay as a log


@pytest.mark.django_db
def test_a_row_left_processing_by_a_dead_worker_is_retried_once_then_failed(client, staff, settings):
    client.force_login(staff)
    upload(client, ("a.md", b"# A\n\n" + PAGE_2.encode()))
    long_ago = timezone.now() - timedelta(seconds=settings.EVI360_UPLOAD_STALE_SECONDS + 1)

    def die_while_processing() -> None:  # claimed, then the worker's process is gone
        row = uploads.claim()
        assert row is not None and row.status == "processing"
        Upload.objects.filter(pk=row.pk).update(heartbeat_at=long_ago)

    die_while_processing()
    assert uploads.recover_stale() == 1
    assert Upload.objects.get().status == "queued"
    die_while_processing()
    uploads.recover_stale()
    row = Upload.objects.get()
    assert (row.status, row.attempts) == ("failed", 2)
    assert "stopped, twice" in row.reason
    assert Source.objects.count() == 0


@pytest.mark.django_db
def test_a_claimed_row_is_claimed_once():
    Upload.objects.create(name="a.md", content=b"# A\n\ntekst")
    assert uploads.claim() is not None
    assert uploads.claim() is None


@pytest.mark.django_db(transaction=True)
def test_the_worker_thread_processes_an_upload_after_the_request_returned(client, staff, settings):
    settings.EVI360_UPLOAD_WORKER = "thread"
    client.force_login(staff)
    assert upload(client, ("a.md", b"# A\n\n" + PAGE_2.encode())).status_code == 302
    worker = uploads._worker  # started on commit; None if it is already done
    if worker is not None:
        worker.join(120)
    row = Upload.objects.get()
    assert (row.status, row.chunk_count) == ("done", 1)
