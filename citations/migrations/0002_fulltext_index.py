"""The full-text index over Chunk.search_text (Snowball stems computed in citations/analysis.py).

SQLite: an external-content FTS5 table kept in step with citations_chunk by triggers; ranked with
bm25(). PostgreSQL: a generated tsvector column with a GIN index; ranked with ts_rank. The stems
are already language-specific, so PostgreSQL uses the ``simple`` configuration (no second stemming).
"""

from django.db import migrations

SQLITE_FORWARD = [
    """CREATE VIRTUAL TABLE citations_chunk_fts USING fts5(
        search_text, content='citations_chunk', content_rowid='id', tokenize='unicode61'
    )""",
    """CREATE TRIGGER citations_chunk_fts_insert AFTER INSERT ON citations_chunk BEGIN
        INSERT INTO citations_chunk_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    """CREATE TRIGGER citations_chunk_fts_delete AFTER DELETE ON citations_chunk BEGIN
        INSERT INTO citations_chunk_fts(citations_chunk_fts, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
    END""",
    """CREATE TRIGGER citations_chunk_fts_update AFTER UPDATE ON citations_chunk BEGIN
        INSERT INTO citations_chunk_fts(citations_chunk_fts, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
        INSERT INTO citations_chunk_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    "INSERT INTO citations_chunk_fts(citations_chunk_fts) VALUES ('rebuild')",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS citations_chunk_fts_insert",
    "DROP TRIGGER IF EXISTS citations_chunk_fts_delete",
    "DROP TRIGGER IF EXISTS citations_chunk_fts_update",
    "DROP TABLE IF EXISTS citations_chunk_fts",
]
POSTGRES_FORWARD = [
    """ALTER TABLE citations_chunk ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, search_text)) STORED""",
    "CREATE INDEX citations_chunk_search_gin ON citations_chunk USING GIN (search_vector)",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS citations_chunk_search_gin",
    "ALTER TABLE citations_chunk DROP COLUMN IF EXISTS search_vector",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"full-text search is not implemented for {schema_editor.connection.vendor}")
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("citations", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        )
    ]
