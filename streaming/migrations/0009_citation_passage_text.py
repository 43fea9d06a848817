"""Citations keep the cited passage's text and PDF page (before, read through ``chunk``, they were
lost when a source was deleted or replaced by a re-upload).

Existing rows are filled from their passage where it still exists, in batches of keys, one
``UPDATE … SET text = (SELECT …)`` each (SQLite and PostgreSQL alike; no text through Python).
Rows whose passage is already gone keep an empty text: it cannot be recovered.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery

BATCH = 1000


def fill_from_chunks(apps, schema_editor):
    StreamCitation = apps.get_model("streaming", "StreamCitation")
    Chunk = apps.get_model("citations", "Chunk")
    passage = Chunk.objects.filter(pk=OuterRef("chunk_id"))
    pending = StreamCitation.objects.exclude(chunk=None).order_by("pk").values_list("pk", flat=True)
    last = 0
    while batch := list(pending.filter(pk__gt=last)[:BATCH]):
        StreamCitation.objects.filter(pk__in=batch).update(
            text=Subquery(passage.values("text")[:1]), page=Subquery(passage.values("page")[:1])
        )
        last = batch[-1]


class Migration(migrations.Migration):
    dependencies = [
        ("citations", "0004_chunk_page"),
        ("streaming", "0008_session_regenerates"),
    ]

    operations = [
        migrations.AddField(
            model_name="streamcitation",
            name="text",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="streamcitation",
            name="page",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(fill_from_chunks, migrations.RunPython.noop),
    ]
