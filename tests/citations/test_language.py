from pathlib import Path

import pytest
import yaml

from citations.language import detect_language, resolve_language

CASES = yaml.safe_load((Path(__file__).parent / "language_cases.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Hoe zwaar mag ik tillen?", "nl"), ("What is the noise limit?", "en")],
)
def test_short_queries(text, expected):
    assert detect_language(text) == expected


def test_accuracy_on_the_query_set():
    assert len(CASES["nl"]) >= 40 and len(CASES["en"]) >= 40
    wrong = [(q, lang) for lang in ("nl", "en") for q in CASES[lang] if detect_language(q) != lang]
    accuracy = 1 - len(wrong) / (len(CASES["nl"]) + len(CASES["en"]))
    assert accuracy >= 0.95, f"accuracy {accuracy:.1%}, wrong: {wrong}"


def test_explicit_language_wins_and_auto_detects():
    assert resolve_language("What is the noise limit?", "nl") == "nl"
    assert resolve_language("What is the noise limit?", "auto") == "en"
    assert resolve_language("Hoe zwaar mag ik tillen?", None) == "nl"


def test_text_without_clues_defaults_to_dutch():
    assert detect_language("") == "nl"
    assert detect_language("123 ?!") == "nl"
