"""Retrieval: quality per kind of question, and latency and memory over a large knowledge base.

    .venv/bin/python bench/retrieval.py --quality                 # hit@5 and MRR, SQLite
    .venv/bin/python bench/retrieval.py --quality --postgres URL  # the same on PostgreSQL
    .venv/bin/python bench/retrieval.py                  # latency, 10,000 chunks, SQLite (a fresh file under var/)
    .venv/bin/python bench/retrieval.py --chunks 100000  # 100,000 chunks
    .venv/bin/python bench/retrieval.py --postgres URL   # PostgreSQL (its tables are replaced)

Quality: the bundled corpus and the question sets in tests/citations/ (the first 82 questions,
the development set the fusion was tuned on, the blind evaluation set), each question's
expected source in the top 5 (hit@5) and the reciprocal rank of the first one (MRR), per kind,
for full-text search alone, dense search alone and hybrid retrieval.

Latency and memory (the built-in embedding model):
Builds the bundled corpus plus generated documents until there are 10,000 chunks, then times
``retrieve()`` for every question of the retrieval test set, repeated, and prints p50/p95/max in
milliseconds. Generated chunks are 150 words: 85 % drawn from a Zipf-distributed synthetic
vocabulary of 30,000 words (the long tail of a real knowledge base) and 15 % from the real
corpus's words, so a topic word such as "til" occurs in about 1 % of chunks, as in real text.
``--dense`` instead shuffles whole sentences of the 23 sample documents, so every topic word occurs
in a third to a half of all chunks: a worst case no real knowledge base reaches.
The generated chunks get random unit vectors (the search's cost does not depend on what they
say); the bundled corpus keeps its real ones. Reported: full-text, dense and hybrid retrieval
per query (p50/p95, the database trip included), the matrix's load time and size, the worker's
RSS, and the CPU time of embedding one question. A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def database_url(postgres: str | None, name: str) -> str:
    """The PostgreSQL URL given, or a fresh SQLite file var/bench-<name>.sqlite3."""
    if postgres:
        return postgres
    path = ROOT / "var" / f"bench-{name}.sqlite3"
    path.parent.mkdir(exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evi360.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _synthetic_text(
    rng: random.Random, real_words: list[str], synthetic: list[str], weights: list[float]
) -> str:
    words = rng.choices(synthetic, weights=weights, k=128) + rng.choices(real_words, k=22)
    rng.shuffle(words)
    return " ".join(words) + "."


def build(target_chunks: int, dense: bool, seed: int = 7) -> None:
    from django.db import transaction
    from django.utils import timezone

    from citations import analysis, embeddings
    from citations.loader import BUNDLED_CORPUS
    from citations.models import Chunk, ChunkVector, IndexVersion, Source
    from citations.services import load_paths
    from citations.vectors import to_bytes

    Source.objects.all().delete()
    load_paths([BUNDLED_CORPUS])
    model = embeddings.model_name()
    np_rng = np.random.default_rng(seed)
    rng = random.Random(seed)
    sentences = {lang: [] for lang in ("nl", "en")}
    for chunk in Chunk.objects.select_related("source"):
        sentences[chunk.source.language].extend(s for s in chunk.text.replace("\n", " ").split(". ") if s)
    real_words = {lang: sorted({w for s in sentences[lang] for w in s.lower().split()}) for lang in sentences}
    synthetic = [f"{rng.choice('bdfgklmnprstvz')}{rng.choice('aeiou')}{n:x}" for n in range(30_000)]
    weights = [1 / (rank + 1) for rank in range(len(synthetic))]
    missing = target_chunks - Chunk.objects.count()
    per_source = 10
    with transaction.atomic():
        for n in range(0, missing, per_source):
            lang = "nl" if rng.random() < 0.8 else "en"
            source = Source.objects.create(
                origin=f"generated/{n}.md",
                title=f"Generated {n}",
                language=lang,
                content_hash="-",
                loaded_at=timezone.now(),
            )
            batch = []
            for position in range(min(per_source, missing - n)):
                if dense:
                    text = ". ".join(rng.sample(sentences[lang], 12)) + "."
                else:
                    text = _synthetic_text(rng, real_words[lang], synthetic, weights)
                batch.append(
                    Chunk(
                        source=source,
                        position=position,
                        heading_path=source.title,
                        text=text,
                        search_text=analysis.search_text(text, lang),
                    )
                )
            created = Chunk.objects.bulk_create(batch)
            ChunkVector.objects.bulk_create(
                ChunkVector(chunk=c, model=model, dimensions=512, vector=to_bytes(v))
                for c, v in zip(created, _random_units(np_rng, len(created)), strict=True)
            )
        IndexVersion.bump()


def _random_units(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.normal(size=(count, 512)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _cases(name: str) -> list[dict]:
    import yaml

    return yaml.safe_load((ROOT / "tests/citations" / name).read_text(encoding="utf-8"))


def measure(rounds: int) -> dict[str, list[float]]:
    """Milliseconds per query of each path, and of embedding one question (CPU)."""
    from citations import embeddings
    from citations.retrieval import retrieve
    from citations.vectors import INDEX

    cases = _cases("retrieval_cases.yaml")
    model = embeddings.get_embedder().model
    vectors = model.encode([c["query"] for c in cases])
    matrix = INDEX.current()
    timings: dict[str, list[float]] = {"full-text": [], "dense": [], "hybrid": [], "embedding (CPU)": []}
    for case, vector in list(zip(cases, vectors, strict=True))[:5]:  # warm caches and the connection
        retrieve(case["query"], case["language"], 5, vector=vector, matrix=matrix)
    for _ in range(rounds):
        for case, vector in zip(cases, vectors, strict=True):
            start = time.perf_counter()
            retrieve(case["query"], case["language"], 5)
            timings["full-text"].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            matrix.search(vector, case["language"], 30)
            timings["dense"].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            retrieve(case["query"], case["language"], 5, vector=vector, matrix=matrix)
            timings["hybrid"].append((time.perf_counter() - start) * 1000)
            start = time.process_time()
            model.encode([case["query"]])
            timings["embedding (CPU)"].append((time.process_time() - start) * 1000)
    return timings


def quality() -> list[tuple[str, str, str, int, int, float]]:
    """(set, kind, path, hits, questions, MRR) of every question set, kind and retrieval path."""
    from citations import embeddings
    from citations.models import Source
    from citations.retrieval import chunks_by_id, retrieve
    from citations.vectors import INDEX

    slugs = {s.pk: s.origin.rsplit("/", 1)[-1].rsplit(".", 1)[0] for s in Source.objects.all()}
    model = embeddings.get_embedder().model
    matrix = INDEX.current()
    rows = []
    for name in ("retrieval_cases.yaml", "retrieval_dev.yaml", "retrieval_eval.yaml"):
        cases = _cases(name)
        vectors = model.encode([c["query"] for c in cases])
        tally: dict[tuple[str, str], list[float]] = {}
        for case, vector in zip(cases, vectors, strict=True):
            expected = set(case["expected"] if isinstance(case["expected"], list) else [case["expected"]])
            dense_ids = [i for i, _ in matrix.search(vector, case["language"], 5)]
            by_id = chunks_by_id(dense_ids)
            found = {
                "full-text": retrieve(case["query"], case["language"], 5),
                "dense": [by_id[i] for i in dense_ids if i in by_id],
                "hybrid": retrieve(case["query"], case["language"], 5, vector=vector, matrix=matrix),
            }
            for path, chunks in found.items():
                rank = next((n for n, c in enumerate(chunks, 1) if slugs[c.source_id] in expected), None)
                entry = tally.setdefault((case.get("kind", "plain"), path), [0, 0, 0.0])
                entry[0] += rank is not None
                entry[1] += 1
                entry[2] += 1 / rank if rank else 0.0
        rows.extend((name, kind, path, int(h), int(n), m / n) for (kind, path), (h, n, m) in tally.items())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL URL (its tables are replaced)")
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--dense", action="store_true", help="worst case: every chunk made of sample sentences"
    )
    parser.add_argument("--quality", action="store_true", help="hit@5 and MRR per kind on the bundled corpus")
    args = parser.parse_args()
    setup(database_url(args.postgres, "retrieval-quality" if args.quality else "retrieval"))
    import psutil
    from django.db import connection

    from citations.loader import BUNDLED_CORPUS
    from citations.models import Chunk, Source
    from citations.services import load_paths
    from citations.vectors import INDEX

    if args.quality:
        Source.objects.all().delete()
        load_paths([BUNDLED_CORPUS])
        print(f"retrieval quality on {connection.vendor}, {Chunk.objects.count()} chunks (built-in model)")
        print(f"{'set':22} {'kind':14} {'path':10} {'hit@5':>12} {'MRR':>6}")
        for name, kind, path, hits, count, mrr in quality():
            print(f"{name:22} {kind:14} {path:10} {hits:>4}/{count:<3} {hits / count:4.0%} {mrr:6.2f}")
        return

    started = time.perf_counter()
    build(args.chunks, args.dense)
    built = time.perf_counter() - started
    rss_before = psutil.Process().memory_info().rss / 2**20
    INDEX.clear()
    started = time.perf_counter()
    matrix = INDEX.current()
    loaded = time.perf_counter() - started
    rss_after = psutil.Process().memory_info().rss / 2**20
    print(
        f"retrieval on {connection.vendor}{' (dense)' if args.dense else ''}: {Chunk.objects.count()} chunks "
        f"(built in {built:.1f} s); matrix of {len(matrix)} vectors loaded in {loaded:.2f} s "
        f"(hubness included), {(matrix.vectors.nbytes + matrix.ids.nbytes) / 2**20:.1f} MiB; "
        f"worker RSS {rss_after:.0f} MiB ({rss_after - rss_before:+.0f} MiB for the matrix)"
    )
    for path, timings in measure(args.rounds).items():
        q = statistics.quantiles(timings, n=100)
        print(
            f"  {path:16} {len(timings)} queries: p50 {q[49]:.2f} ms, p95 {q[94]:.2f} ms, max {max(timings):.2f} ms"
        )


if __name__ == "__main__":
    main()
