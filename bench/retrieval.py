"""Retrieval latency over a generated knowledge base of 10,000 chunks.

    .venv/bin/python bench/retrieval.py                  # SQLite (a fresh file under var/)
    .venv/bin/python bench/retrieval.py --postgres URL   # PostgreSQL (the database is recreated)

Builds the bundled corpus plus generated documents until there are 10,000 chunks, then times
``retrieve()`` for every question of the retrieval test set, repeated, and prints p50/p95/max in
milliseconds. Generated chunks are 150 words: 85 % drawn from a Zipf-distributed synthetic
vocabulary of 30,000 words (the long tail of a real knowledge base) and 15 % from the real
corpus's words, so a topic word such as "til" occurs in about 1 % of chunks, as in real text.
``--dense`` instead shuffles whole sentences of the 23 sample documents, so every topic word occurs
in a third to a half of all chunks: a worst case no real knowledge base reaches.
Target: p95 under 20 ms. A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

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

    from citations import analysis
    from citations.loader import BUNDLED_CORPUS
    from citations.models import Chunk, Source
    from citations.services import load_paths

    Source.objects.all().delete()
    load_paths([BUNDLED_CORPUS])
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
            Chunk.objects.bulk_create(batch)


def measure(rounds: int) -> list[float]:
    import yaml

    from citations.retrieval import retrieve

    cases = yaml.safe_load((ROOT / "tests/citations/retrieval_cases.yaml").read_text(encoding="utf-8"))
    for case in cases[:5]:  # warm caches and the connection
        retrieve(case["query"], case["language"], 5)
    timings = []
    for _ in range(rounds):
        for case in cases:
            start = time.perf_counter()
            retrieve(case["query"], case["language"], 5)
            timings.append((time.perf_counter() - start) * 1000)
    return timings


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
    args = parser.parse_args()
    setup(database_url(args.postgres, "retrieval"))
    from django.db import connection

    from citations.models import Chunk

    started = time.perf_counter()
    build(args.chunks, args.dense)
    built = time.perf_counter() - started
    timings = measure(args.rounds)
    q = statistics.quantiles(timings, n=100)
    print(
        f"retrieval on {connection.vendor}{' (dense)' if args.dense else ''}: {Chunk.objects.count()} chunks "
        f"(built in {built:.1f} s), "
        f"{len(timings)} queries: p50 {q[49]:.2f} ms, p95 {q[94]:.2f} ms, max {max(timings):.2f} ms"
    )


if __name__ == "__main__":
    main()
