"""Full-text retrieval over the knowledge base, on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Both backends search the same Snowball stems (see ``analysis.py``); a query matches a chunk when
they share any term, and chunks in the query's language get a boost, so a Dutch question is
answered from Dutch sources when they cover it, and from English ones when only those do.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from . import analysis

SAME_LANGUAGE_BOOST = 1.5
# Fetch a few more than asked so that dropping duplicate passages still leaves k.
_OVERFETCH = 3

# The columns of RetrievedChunk, in its order: one query per retrieval, no model instances (it
# runs before every answer's first token).
_COLUMNS = "c.id, c.source_id, s.title, s.url, s.language, c.heading_path, c.text"

_SQLITE = f"""
    SELECT {_COLUMNS}
    FROM citations_chunk_fts
    JOIN citations_chunk c ON c.id = citations_chunk_fts.rowid
    JOIN citations_source s ON s.id = c.source_id
    WHERE citations_chunk_fts MATCH %s
    ORDER BY bm25(citations_chunk_fts)
             * (CASE WHEN s.language = %s THEN {SAME_LANGUAGE_BOOST} ELSE 1.0 END), c.id
    LIMIT %s
"""

# ts_rank normalisation 1 divides by 1 + log(length), so long chunks don't win by size alone.
_POSTGRES = f"""
    SELECT {_COLUMNS}
    FROM citations_chunk c
    JOIN citations_source s ON s.id = c.source_id,
         to_tsquery('simple', %s) q
    WHERE c.search_vector @@ q
    ORDER BY ts_rank(c.search_vector, q, 1)
             * (CASE WHEN s.language = %s THEN {SAME_LANGUAGE_BOOST} ELSE 1.0 END) DESC, c.id
    LIMIT %s
"""


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: int
    source_id: int
    title: str
    url: str
    language: str
    heading_path: str
    text: str


def _match_expression(terms: list[str]) -> str:
    # Stems are \w+ only (analysis.words), so they can be quoted without escaping.
    if connection.vendor == "postgresql":
        return " | ".join(f"'{t}'" for t in terms)
    return " OR ".join(f'"{t}"' for t in terms)


def retrieve(query: str, language: str, k: int = 5) -> list[RetrievedChunk]:
    """The ``k`` chunks that best match ``query``, best first, no passage twice."""
    terms = analysis.query_terms(query, language)
    if not terms or k < 1:
        return []
    sql = _POSTGRES if connection.vendor == "postgresql" else _SQLITE
    with connection.cursor() as cursor:
        cursor.execute(sql, [_match_expression(terms), language, k * _OVERFETCH])
        rows = cursor.fetchall()
    results: list[RetrievedChunk] = []
    seen: set[str] = set()
    for row in rows:
        fingerprint = " ".join(row[6].split()).lower()
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        results.append(RetrievedChunk(*row))
        if len(results) == k:
            break
    return results
