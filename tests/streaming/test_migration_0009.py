"""streaming/migrations/0009: citations recorded before it get their passage's text and page from
the passage, where it still exists."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("streaming", "0008_session_regenerates")


def migrate(streaming: tuple[str, str] | None = None):
    """Migrate the test database to the latest migrations, with streaming at ``streaming`` if
    given; the models as they are then."""
    executor = MigrationExecutor(connection)
    targets = [
        node for node in executor.loader.graph.leaf_nodes() if streaming is None or node[0] != streaming[0]
    ]
    targets += [streaming] if streaming else []
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_citations_are_filled_from_their_passage(user, monkeypatch):
    apps = migrate(BEFORE)
    try:
        Source, Chunk = apps.get_model("citations", "Source"), apps.get_model("citations", "Chunk")
        Session = apps.get_model("streaming", "StreamSession")
        Citation = apps.get_model("streaming", "StreamCitation")
        source = Source.objects.create(
            origin="upload:val.pdf",
            title="Valbeveiliging",
            language="nl",
            content_hash="h",
            loaded_at=timezone.now(),
        )
        chunks = [
            Chunk.objects.create(source=source, position=n, text=text, page=page, search_text="x")
            for n, (text, page) in enumerate(
                [("Een vanglijn wordt gekeurd.", 2), ("Tillen **zwaar**.", None)]
            )
        ]
        session = Session.objects.create(
            user_id=user.pk, query="q", language="nl", model_name="offline", created_at=timezone.now()
        )
        for marker, chunk in enumerate([*chunks, None], start=1):
            Citation.objects.create(
                session=session, marker=marker, chunk=chunk, source=source, title="Valbeveiliging", offset=0
            )
        # Batches smaller than the rows: each batch must start where the last one ended.
        monkeypatch.setattr("streaming.migrations.0009_citation_passage_text.BATCH", 1)
    finally:
        apps = migrate()  # and back to the latest, for the tests that follow
    rows = apps.get_model("streaming", "StreamCitation").objects.order_by("marker")
    assert list(rows.values_list("marker", "text", "page")) == [
        (1, "Een vanglijn wordt gekeurd.", 2),
        (2, "Tillen **zwaar**.", None),  # the full passage, Markdown and all: the API shortens it
        (3, "", None),  # its passage was gone before the migration: nothing to copy
    ]
