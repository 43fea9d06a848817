"""Hybrid retrieval over the knowledge base: full-text search fused with dense vectors.

Full-text search runs in the database, SQLite FTS5 (bm25) or PostgreSQL (tsvector + GIN,
ts_rank), over the same Snowball stems on both (``analysis.py``): a query matches a chunk when
they share a term, and chunks in the query's language get a boost. It finds what shares words
with the question, and nothing across languages or synonyms.

Dense search (``vectors.py``) compares the question's embedding with every passage's, across
languages: "How many night shifts in a row are allowed?" finds *Arbeidstijden en nachtwerk*.
The two rankings are fused (``fuse``, ``Fusion``): the dense score, plus a bonus for a full-text
match by the share of the question's terms it contains, so the weak English matches that fill an
English question's full-text list gain little (docs/retrieval.md, "Fusion"). Without a question
vector (dense search off, the embedding failed or timed out) retrieval is full-text search alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection

from . import analysis
from .vectors import INDEX, Matrix

SAME_LANGUAGE_BOOST = 1.5
# Fetch a few more than asked so that dropping duplicate passages still leaves k.
_OVERFETCH = 3


@dataclass(frozen=True)
class Fusion:
    """How the two rankings are fused. The candidates are the first ``candidates`` of each
    ranking. A candidate scores its dense score (cosine minus hubness, ``vectors.py``), plus, if
    full-text search found it at ``rank`` (1 best), ``fts_weight x coverage^coverage_power /
    (rrf_k + rank)``, where coverage is the share of the question's search terms it contains.

    So full-text search can lift a passage that shares the question's words, but a passage that
    matched one or two common words of an English question (while its answer is Dutch) gains
    little: plain reciprocal-rank fusion let those crowd out the Dutch source. Passages in the
    question's language gain ``language_bonus`` on their dense score (0: tuned, it did not help).
    Tuned on tests/citations/retrieval_dev.yaml; docs/retrieval.md has the sweep."""

    fts_weight: float = 0.8
    rrf_k: float = 1.0
    coverage_power: float = 2.0
    candidates: int = 15
    language_bonus: float = 0.0


FUSION = Fusion()
# A question whose best full-text match contains every one of its search terms is answered from
# full-text search alone, its embedding skipped: it shares its source's words (docs/retrieval.md).
CONFIDENT_COVERAGE = 1.0

# Full-text matches with their coverage (the share of the question's terms each contains).
Lexical = list[tuple["RetrievedChunk", float]]

# The columns of RetrievedChunk, in its order: one query per retrieval, no model instances (it
# runs before every answer's first token).
_COLUMNS = "c.id, c.source_id, s.title, s.url, s.language, c.heading_path, c.text, c.page"

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
    page: int | None = None  # the PDF page the passage is on


def _match_expression(terms: list[str]) -> str:
    # Stems are \w+ only (analysis.words), so they can be quoted without escaping.
    if connection.vendor == "postgresql":
        return " | ".join(f"'{t}'" for t in terms)
    return " OR ".join(f'"{t}"' for t in terms)


def lexical_matches(query: str, language: str, k: int, fusion: Fusion | None = None) -> Lexical:
    """What ``retrieve`` searches full-text for: enough candidates for fusion and for ``k``."""
    return _full_text(query, language, max((fusion or FUSION).candidates, k * _OVERFETCH))


def confident(lexical: Lexical) -> bool:
    """Full-text search alone answers: its best match contains all of the question's terms."""
    return bool(lexical) and lexical[0][1] >= CONFIDENT_COVERAGE


def _full_text(query: str, language: str, limit: int) -> list[tuple[RetrievedChunk, float]]:
    """Full-text matches with their coverage: the share of the query's terms each contains."""
    terms = analysis.query_terms(query, language)
    if not terms or limit < 1:
        return []
    sql = (_POSTGRES if connection.vendor == "postgresql" else _SQLITE).replace(
        _COLUMNS, f"{_COLUMNS}, c.search_text", 1
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_match_expression(terms), language, limit])
        rows = cursor.fetchall()
    wanted = set(terms)
    return [
        (RetrievedChunk(*row[:-1]), len(wanted.intersection(row[-1].split())) / len(wanted)) for row in rows
    ]


def chunks_by_id(ids: Sequence[int]) -> dict[int, RetrievedChunk]:
    if not ids:
        return {}
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM citations_chunk c JOIN citations_source s ON s.id = c.source_id "
            f"WHERE c.id IN ({placeholders})",
            list(ids),
        )
        return {row[0]: RetrievedChunk(*row) for row in cursor.fetchall()}


def fuse(dense: dict[int, float], lexical: Sequence[tuple[int, float]], fusion: Fusion) -> list[int]:
    """Candidate ids best first: ``dense`` maps every candidate to its dense score, ``lexical``
    is the full-text ranking as (id, coverage), best first. Ties keep the dense order."""
    scores = dict(dense)
    for rank, (chunk_id, coverage) in enumerate(lexical, start=1):
        scores[chunk_id] = scores.get(chunk_id, 0.0) + fusion.fts_weight * coverage**fusion.coverage_power / (
            fusion.rrf_k + rank
        )
    return sorted(scores, key=lambda chunk_id: -scores[chunk_id])


def _distinct(chunks: Sequence[RetrievedChunk], k: int) -> list[RetrievedChunk]:
    results: list[RetrievedChunk] = []
    seen: set[str] = set()
    for chunk in chunks:
        fingerprint = " ".join(chunk.text.split()).lower()
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        results.append(chunk)
        if len(results) == k:
            break
    return results


def retrieve(
    query: str,
    language: str,
    k: int = 5,
    *,
    vector: np.ndarray | None = None,
    matrix: Matrix | None = None,
    fusion: Fusion | None = None,
    lexical: Lexical | None = None,
) -> list[RetrievedChunk]:
    """The ``k`` chunks that best answer ``query``, best first, no passage twice: full-text and
    dense rankings fused when the question's ``vector`` is given, full-text search alone when not.
    ``matrix``: the vectors to search (default: this process's, reloaded if the stored ones
    changed). ``lexical``: the full-text matches, when already read (``lexical_matches``). Runs
    in a database thread."""
    if k < 1:
        return []
    fusion = fusion or FUSION
    if lexical is None:
        lexical = lexical_matches(query, language, k, fusion)
    if vector is None:
        return _distinct([c for c, _ in lexical], k)
    matrix = matrix if matrix is not None else INDEX.current()
    lexical_ids = [c.chunk_id for c, _ in lexical[: fusion.candidates]]
    dense = matrix.scores(vector, language, fusion.candidates, lexical_ids, fusion.language_bonus)
    if not dense:
        return _distinct([c for c, _ in lexical], k)
    order = fuse(dense, [(c.chunk_id, coverage) for c, coverage in lexical[: fusion.candidates]], fusion)
    rows = {c.chunk_id: c for c, _ in lexical}
    # Enough to fill k after dropping duplicate passages, fetched in one query.
    wanted = order[: k * _OVERFETCH]
    rows.update(chunks_by_id([chunk_id for chunk_id in wanted if chunk_id not in rows]))
    return _distinct([rows[chunk_id] for chunk_id in wanted if chunk_id in rows], k)
