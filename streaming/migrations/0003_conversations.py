"""Conversations: a model for the threads whose ids the sessions already carry.

Existing sessions keep their links: a Conversation is created for every conversation id in use
(titled after its first question), then ``conversation_id`` becomes a foreign key on the same
column, in Django's state only (no constraint, so no table rebuild and no data copied).
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def create_conversations(apps, schema_editor):
    StreamSession = apps.get_model("streaming", "StreamSession")
    Conversation = apps.get_model("streaming", "Conversation")
    first: dict = {}
    for session in StreamSession.objects.exclude(conversation_id=None).order_by("created_at").iterator():
        entry = first.setdefault(session.conversation_id, [session.user_id, session.query, session.created_at, None])
        entry[3] = session.created_at
    Conversation.objects.bulk_create(
        Conversation(id=cid, user_id=user_id, title=query[:120]) for cid, (user_id, query, _, _) in first.items()
    )
    for cid, (_, _, created, updated) in first.items():
        Conversation.objects.filter(pk=cid).update(created_at=created, updated_at=updated)


class Migration(migrations.Migration):
    dependencies = [
        ("streaming", "0002_api_keys_and_openai_clients"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Conversation",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("title", models.CharField(max_length=120)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True, db_index=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversations",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["-updated_at"]},
        ),
        migrations.RunPython(create_conversations, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="streamsession", name="conversation_id"),
                migrations.AddField(
                    model_name="streamsession",
                    name="conversation",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="turns",
                        to="streaming.conversation",
                    ),
                ),
            ],
        ),
    ]
