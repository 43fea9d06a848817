from pathlib import Path

import numpy as np
import pytest
import yaml

from citations import embeddings
from citations.models import Source
from citations.retrieval import confident, lexical_matches, retrieve
from citations.services import load_paths

pytestmark = pytest.mark.django_db
CASES_FILE = Path(__file__).parent / "retrieval_cases.yaml"


@pytest.fixture
def small_kb(write_doc, tmp_path):
    write_doc(
        "kb/tillen.md", "---\nlanguage: nl\n---\n# Tillen\n\nDe werknemer tilt de doos met een rechte rug.\n"
    )
    write_doc("kb/til.md", "---\nlanguage: nl\n---\n# Sjouwen\n\nWie vaak til, gebruikt een hulpmiddel.\n")
    write_doc("kb/werkplek.md", "---\nlanguage: nl\n---\n# Inrichting\n\nStel de werkplek goed in.\n")
    write_doc(
        "kb/lifting-en.md", "---\nlanguage: en\n---\n# Lifting\n\nLifting heavy boxes hurts your back.\n"
    )
    write_doc(
        "kb/copy-a.md", "---\nlanguage: nl\n---\n# Kopie A\n\nValbeveiliging is verplicht vanaf 2,5 meter.\n"
    )
    write_doc(
        "kb/copy-b.md", "---\nlanguage: nl\n---\n# Kopie B\n\nValbeveiliging is verplicht vanaf 2,5 meter.\n"
    )
    load_paths([tmp_path / "kb"])


def titles(results):
    return [r.title for r in results]


def test_dutch_morphology_finds_other_forms(small_kb):
    assert set(titles(retrieve("tillen", "nl"))) >= {"Tillen", "Sjouwen"}
    assert titles(retrieve("werkplekken", "nl")) == ["Inrichting"]


def test_results_carry_their_source(small_kb):
    [hit] = retrieve("werkplekken", "nl")
    assert hit.text == "Stel de werkplek goed in."
    assert (hit.language, hit.heading_path, hit.url) == ("nl", "Inrichting", "")


def test_the_same_passage_is_returned_once(small_kb):
    results = retrieve("valbeveiliging verplicht", "nl", k=5)
    assert len(results) == 1


def test_k_limits_and_orders_best_first(small_kb):
    assert len(retrieve("tillen til tilt", "nl", k=1)) == 1
    assert retrieve("tillen", "nl", k=0) == []


def test_no_match_and_empty_query_give_nothing(small_kb):
    assert retrieve("quantumchromodynamica", "nl") == []
    assert retrieve("   ?! ", "nl") == []


def test_same_language_sources_rank_first(small_kb):
    # "lifting" is English; with an English query the English source leads.
    assert titles(retrieve("lifting boxes", "en"))[0] == "Lifting"


def test_query_text_cannot_inject_search_syntax(small_kb):
    for query in ['tillen" OR "x', "til* NEAR(a b)", "'; DROP TABLE citations_chunk; --", "a & b | !c"]:
        retrieve(query, "nl")  # no error
    assert titles(retrieve("tillen", "nl"))


def quality(cases_file: Path, *, hybrid: bool = True) -> dict[str, tuple[int, int, list[str]]]:
    """Per kind: (hits, questions, missed questions), an expected source in the top 5."""
    cases = yaml.safe_load(cases_file.read_text(encoding="utf-8"))
    slugs = {s.pk: s.origin.rsplit("/", 1)[-1].rsplit(".", 1)[0] for s in Source.objects.all()}
    vectors = (
        embeddings.get_embedder().model.encode([c["query"] for c in cases]) if hybrid else [None] * len(cases)
    )
    result: dict[str, tuple[int, int, list[str]]] = {}
    for case, vector in zip(cases, vectors, strict=True):
        expected = case["expected"] if isinstance(case["expected"], list) else [case["expected"]]
        assert set(expected) <= set(slugs.values()), case
        # As a stream's start does: a question full-text search answers alone is not embedded.
        lexical = lexical_matches(case["query"], case["language"], 5)
        if confident(lexical):
            vector = None
        found = {
            slugs[r.source_id]
            for r in retrieve(case["query"], case["language"], k=5, vector=vector, lexical=lexical)
        }
        hits, count, misses = result.get(case.get("kind", "plain"), (0, 0, []))
        hit = bool(found & set(expected))
        result[case.get("kind", "plain")] = (hits + hit, count + 1, misses + ([] if hit else [case["query"]]))
    return result


def test_quality_of_the_first_82_questions(corpus):
    cases = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    dutch = sum(1 for c in cases if c["language"] == "nl")
    assert dutch >= 20 and len(cases) - dutch >= 10
    for hybrid in (False, True):
        hits, count, misses = quality(CASES_FILE, hybrid=hybrid)["plain"]
        assert hits / count >= 0.98, f"hybrid={hybrid}: {hits}/{count}, misses: {misses}"


@pytest.mark.parametrize(
    ("name", "floors"),
    [
        # The set the weights were tuned on (docs/retrieval.md).
        ("retrieval_dev.yaml", {"cross_lingual": 0.90, "paraphrase": 0.90}),
        # Written blind, never tuned on: the floors are just below what hybrid retrieval reaches
        # with the built-in model (64/73 and 48/64 on 2026-12-02), short of the 90 % aimed at;
        # on its paraphrases full-text search alone does a little better (51/64): docs/retrieval.md.
        ("retrieval_eval.yaml", {"cross_lingual": 0.85, "paraphrase": 0.72}),
    ],
)
def test_quality_across_languages_and_words(corpus, name, floors):
    path = CASES_FILE.parent / name
    kinds = quality(path)
    lexical = quality(path, hybrid=False)
    for kind, floor in floors.items():
        hits, count, misses = kinds[kind]
        assert count >= 36, (kind, count)
        assert hits / count >= floor, f"{kind}: {hits}/{count}, misses: {misses}"
    # Across languages, dense retrieval is what finds the source: words alone miss most.
    assert (
        lexical["cross_lingual"][0] / lexical["cross_lingual"][1]
        < 0.4
        < kinds["cross_lingual"][0] / kinds["cross_lingual"][1]
    )


def test_an_english_question_finds_its_dutch_guideline(corpus):
    question = "How many night shifts in a row are allowed?"
    vector = embeddings.get_embedder().model.encode([question])[0]
    hybrid = retrieve(question, "en", 5, vector=vector)
    assert hybrid[0].title == "Arbeidstijden en nachtwerk"
    assert sum(r.title == "Arbeidstijden en nachtwerk" for r in hybrid) >= 3
    assert "Arbeidstijden en nachtwerk" not in titles(retrieve(question, "en", 5))  # words alone miss it


@pytest.mark.parametrize("query", ["", "🦺🔥👷", "tillen " * 700, "a", "'; DROP TABLE citations_chunk; --"])
def test_hybrid_takes_any_query(corpus, query):
    vector = embeddings.get_embedder().model.encode([query])[0]
    results = retrieve(query, "nl", 5, vector=vector)
    assert len(results) == 5  # the dense side always has nearest passages
    assert len({" ".join(r.text.split()).lower() for r in results}) == 5


def test_hybrid_keeps_the_no_duplicate_passage_rule(small_kb):
    vector = embeddings.get_embedder().model.encode(["valbeveiliging verplicht"])[0]
    results = retrieve("valbeveiliging verplicht", "nl", k=6, vector=vector)
    texts = [r.text for r in results]
    assert texts.count("Valbeveiliging is verplicht vanaf 2,5 meter.") == 1
    assert len(results) == 5  # six sources, two of them the same passage


def test_without_vectors_of_the_model_retrieval_is_full_text(small_kb, settings, dense_state):
    settings.EVI360_EMBEDDING_MODEL = "python:tests.citations.test_retrieval:other_model"
    vector = np.ones(8, dtype=np.float32) / np.sqrt(8)
    assert titles(retrieve("tillen", "nl", vector=vector)) == titles(retrieve("tillen", "nl"))


def other_model():
    from pydantic_ai.embeddings import TestEmbeddingModel

    return TestEmbeddingModel()


def test_a_question_whose_words_a_passage_holds_is_confident(small_kb):
    assert confident(lexical_matches("werkplekken inrichten", "nl", 5))
    assert not confident(lexical_matches("werkplekken en quantumfysica", "nl", 5))
    assert not confident(lexical_matches("quantumfysica", "nl", 5))  # no match at all
