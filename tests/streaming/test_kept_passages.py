"""A cited passage outlives its source in the stream log (issue #21): after the source is deleted
or replaced by a re-upload, the session detail API, the admin's session page and the feedback
export still show the passage's text and PDF page, copied when the stream was recorded."""

from __future__ import annotations

import io
import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from citations import uploads
from citations.models import Chunk, Source
from streaming.engine.generate import snippet
from streaming.models import AnswerFeedback, StreamCitation
from tests.conftest import stream_query
from tests.support.documents import pdf_bytes

pytestmark = pytest.mark.django_db(transaction=True)

INTRO = "Inleiding. Deze richtlijn gaat over veilig werken in de bouw en de rol van de werkgever. " * 3
CITED = (
    "Een vanglijn en een valstopapparaat worden elk jaar gekeurd door een deskundige. Een "
    "afgekeurde vanglijn wordt direct uit gebruik genomen en vervangen. "
) * 3
NEWER = "Een nieuwe richtlijn over ladders en steigers, zonder het oude onderwerp. " * 4


@pytest.fixture(autouse=True)
def _uploads_run_here(settings):
    settings.EVI360_UPLOAD_WORKER = "command"  # the test runs uploads.run_pending itself
    settings.EVI360_EMBEDDING_MODEL = "none"  # full-text retrieval is enough to cite the page


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("admin", password="a-long-pass-123")
    client.force_login(admin)
    return client


def upload(client, pages: list[str]) -> None:
    raw = pdf_bytes(pages, title="Valbeveiliging")
    response = client.post(
        "/admin/citations/upload/upload/", {"files": [SimpleUploadedFile("valbeveiliging.pdf", raw)]}
    )
    assert response.status_code == 302
    assert uploads.run_pending() == 1


async def ask(async_client, headers) -> str:
    """Stream a question that cites the PDF's second page; the session's id."""
    events = await stream_query(async_client, "Hoe vaak wordt een vanglijn gekeurd?", headers)
    (citation, *_) = [data for _, kind, data in events if kind == "citation"]
    assert citation["source"]["title"] == "Valbeveiliging" and citation["source"]["page"] == 2
    return events[0][2]["session_id"]


@pytest.mark.parametrize("change", ["deleted", "replaced"])
async def test_the_log_keeps_the_passage_text_and_page(
    change, admin_client, user, access_token, async_client
):
    await sync_to_async(upload)(admin_client, [INTRO, CITED])
    passage = await Chunk.objects.aget(page=2)
    headers = {"Authorization": f"Bearer {await sync_to_async(access_token)(user)}"}
    session_id = await ask(async_client, headers)
    await AnswerFeedback.objects.acreate(session_id=session_id, rating="down", comment="te vaag")

    def change_the_knowledge_base() -> None:
        if change == "deleted":
            Source.objects.get().delete()
        else:  # the same file name again, other content: the source's passages are replaced
            upload(admin_client, [NEWER])
            assert not Chunk.objects.filter(text__contains="vanglijn").exists()
        citation = StreamCitation.objects.get(session_id=session_id)
        assert citation.chunk_id is None  # the passage itself is gone

    await sync_to_async(change_the_knowledge_base)()

    detail = await async_client.get(f"/api/v1/stream/sessions/{session_id}", headers=headers)
    (cited,) = detail.json()["citations"]
    assert cited["source"]["snippet"] == snippet(passage.text) != ""
    assert (cited["source"]["page"], cited["source"]["passage"]) == (2, None)

    def admin_page() -> str:
        return admin_client.get(f"/admin/streaming/streamsession/{session_id}/change/").content.decode()

    page = await sync_to_async(admin_page)()
    assert "afgekeurde vanglijn wordt direct uit gebruik genomen" in page
    assert re.search(r'<td class="field-page">\s*<p>2</p>', page)

    def export() -> dict:
        out = io.StringIO()
        call_command("export_feedback", stdout=out, stderr=io.StringIO())
        (record,) = [json.loads(line) for line in out.getvalue().splitlines()]
        return record

    (source,) = (await sync_to_async(export)())["sources"]
    assert (source["text"], source["page"], source["passage"]) == (passage.text, 2, None)
