import re

import pytest

from citations.retrieval import RetrievedChunk
from streaming.engine.agent import NumberedSource, format_prompt
from streaming.engine.offline_model import PHRASES, compose_answer


def source(number: int, text: str, language: str = "nl", title: str = "Bron") -> NumberedSource:
    return NumberedSource(number, RetrievedChunk(number, number, title, "", language, title, text))


def test_answers_in_dutch_with_markers_for_the_sources_it_quotes():
    prompt = format_prompt(
        "Hoe zwaar mag ik tillen?",
        "nl",
        [
            source(1, "Tillen is zwaar werk. De richtlijn is dat een werknemer niet meer dan 23 kg tilt."),
            source(2, "Een steiger wordt elke week gecontroleerd door een deskundige."),
        ],
    )
    answer = compose_answer(prompt)
    assert answer.startswith(PHRASES["nl"]["intro"])
    assert "23 kg tilt [1]." in answer
    assert "[2]" not in answer  # nothing in source 2 is about the question
    assert answer.endswith(PHRASES["nl"]["outro"])


def test_answers_in_english_and_flags_a_dutch_source():
    prompt = format_prompt(
        "What is the noise limit?",
        "en",
        [
            source(1, "The upper noise limit for daily exposure is 85 dB(A) for every worker.", "en"),
            source(2, "De onderste actiewaarde voor lawaai is 80 dB(A) bij een werkdag.", "nl"),
        ],
    )
    answer = compose_answer(prompt)
    assert answer.startswith(PHRASES["en"]["intro"])
    assert "[1]" in answer
    assert re.findall(r"\[(\d+)\]", answer) == ["1"] or "(source in Dutch)" in answer


@pytest.mark.parametrize("language", ["nl", "en"])
def test_says_so_when_the_sources_do_not_cover_the_question(language):
    assert (
        compose_answer(format_prompt("Wat is de hoofdstad van Peru?", language, []))
        == PHRASES[language]["nothing"]
    )
