"""The built-in offline model: a real Pydantic AI model that needs no key and no network.

It reads exactly the prompt Claude would get (the numbered sources, the answer language and the
question), picks from each of the best sources the sentences that share most search terms with the
question (or, from a source in the other language, whose words it cannot share, the sentences
nearest the question by the embedding model's vectors), and streams an honest extractive answer
with ``[n]`` markers word by word, pausing
``EVI360_OFFLINE_TOKEN_DELAY_MS`` between words so streaming is visible. It never claims to be
Claude: its name is ``offline`` and its answers say they are quotations.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from django.conf import settings
from pydantic_ai.messages import ModelMessage, ModelRequest, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from citations import analysis, embeddings
from citations.query_vectors import VECTORS

OFFLINE_MODEL_NAME = "offline"
MAX_SOURCES_QUOTED = 3
SENTENCES_PER_SOURCE = 2

_SOURCES_BLOCK = re.compile(r"<sources>\n(.*?)\n</sources>", re.DOTALL)
_SOURCE_HEADER = re.compile(r"^\[(\d+)\] (.*) \((nl|en)\)$", re.MULTILINE)
_LANGUAGE = re.compile(r"^Answer language: .*\[(nl|en)\]$", re.MULTILINE)
_QUESTION = re.compile(r"^Question: (.*)$", re.MULTILINE | re.DOTALL)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_TOKEN = re.compile(r"\S+\s*|\s+")

PHRASES = {
    "nl": {
        "intro": "Dit zeggen de bronnen in de kennisbank over uw vraag:",
        "other_language": "(bron in het Engels)",
        "outro": (
            "Dit antwoord is offline samengesteld uit letterlijke passages van de bronnen; "
            "lees de bronnen voor de volledige context."
        ),
        "nothing": (
            "De kennisbank bevat geen bronnen die deze vraag behandelen, dus ik kan er geen "
            "betrouwbaar antwoord op geven. Probeer de vraag anders te formuleren of raadpleeg een "
            "arbodeskundige."
        ),
    },
    "en": {
        "intro": "This is what the knowledge base says about your question:",
        "other_language": "(source in Dutch)",
        "outro": (
            "This answer was composed offline from verbatim passages of the sources; read the "
            "sources for the full context."
        ),
        "nothing": (
            "The knowledge base has no sources that cover this question, so I cannot give a "
            "reliable answer. Try rephrasing it, or ask an occupational safety expert."
        ),
    },
}


@dataclass(frozen=True)
class _Source:
    number: int
    language: str
    text: str
    heading: str = ""


def _parse_prompt(prompt: str) -> tuple[str, str, list[_Source]]:
    language_match = _LANGUAGE.search(prompt)
    language = language_match.group(1) if language_match else "en"
    question_match = _QUESTION.search(prompt)
    question = question_match.group(1).strip() if question_match else prompt
    sources: list[_Source] = []
    block = _SOURCES_BLOCK.search(prompt)
    if block:
        headers = list(_SOURCE_HEADER.finditer(block.group(1)))
        for i, header in enumerate(headers):
            end = headers[i + 1].start() if i + 1 < len(headers) else len(block.group(1))
            text = block.group(1)[header.end() : end].strip()
            sources.append(_Source(int(header.group(1)), header.group(3), text, header.group(2)))
    return language, question, sources


# A sentence of another language is quoted when its vector is at least this near the question's.
MIN_SIMILARITY = 0.3


def _sentences(source: _Source) -> list[str]:
    sentences = [s.strip().lstrip("-*• ").strip() for s in _SENTENCE.split(source.text)]
    return [s for s in sentences if len(s.split()) >= 4]


def _best_sentences(
    source: _Source, question_terms: set[str], similarity: dict[str, float] | None = None
) -> list[str]:
    """The (at most) two sentences of a source that share most terms with the question, in the
    order they appear; failing that, the two nearest it by ``similarity`` (sentence -> cosine);
    none when no sentence shares a term or comes near."""
    scored: list[tuple[float, int, str]] = []
    sentences = _sentences(source)
    for position, sentence in enumerate(sentences):
        overlap = len(question_terms & set(analysis.stems(sentence, source.language)))
        if overlap:
            scored.append((-overlap, position, sentence))
    if not scored and similarity:
        scored = [
            (-similarity[sentence], position, sentence)
            for position, sentence in enumerate(sentences)
            if similarity.get(sentence, 0.0) >= MIN_SIMILARITY
        ]
    if not scored and question_terms & set(analysis.stems(source.heading, source.language)):
        # The passage is about the question (its title or heading says so) without repeating
        # its words: its opening sentences are the best quote.
        scored = [(0, position, sentence) for position, sentence in enumerate(sentences)]
    best = sorted(scored)[:SENTENCES_PER_SOURCE]
    return [sentence for _, _, sentence in sorted(best, key=lambda item: item[1])]


def compose_answer(prompt: str, similarity: dict[str, float] | None = None) -> str:
    """The offline answer to a prompt built by ``streaming.engine.agent.format_prompt``; ``similarity``:
    the cosine of sentences of other-language sources to the question (``similarities``)."""
    language, question, sources = _parse_prompt(prompt)
    phrases = PHRASES.get(language, PHRASES["en"])
    picked: list[str] = []
    for source in sources:
        terms = set(analysis.query_terms(question, source.language))
        sentences = _best_sentences(source, terms, similarity if source.language != language else None)
        if not sentences:
            continue
        sentence = " ".join(sentences).rstrip(" ;:,")
        note = f" {phrases['other_language']}" if source.language != language else ""
        # The marker goes before the sentence's closing punctuation: "... tillen [1]."
        body, end = (sentence[:-1], sentence[-1]) if sentence[-1] in ".!?" else (sentence, ".")
        picked.append(f"- {body} [{source.number}]{end}{note}")
        if len(picked) == MAX_SOURCES_QUOTED:
            break
    if not picked:
        return phrases["nothing"]
    return "\n".join([phrases["intro"], "", *picked, "", phrases["outro"]])


def _last_user_prompt(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


async def similarities(prompt: str) -> dict[str, float]:
    """Cosine to the question of each sentence of the sources in the other language (empty when
    there are none, dense retrieval is off, or embedding fails: the answer then quotes less)."""
    language, question, sources = _parse_prompt(prompt)
    sentences = list(
        dict.fromkeys(s for source in sources if source.language != language for s in _sentences(source))
    )
    embedder = embeddings.get_embedder() if sentences and embeddings.enabled() else None
    if embedder is None:
        return {}
    question_vector = await VECTORS.embed(question)
    if question_vector is None:
        return {}
    try:
        matrix = embeddings.as_matrix(await embedder.embed_documents(sentences), len(sentences))
    except Exception:
        return {}
    if matrix.shape[1] != question_vector.shape[0]:
        return {}
    return dict(zip(sentences, (matrix @ question_vector).tolist(), strict=True))


async def _stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
    delay = settings.EVI360_OFFLINE_TOKEN_DELAY_MS / 1000
    prompt = _last_user_prompt(messages)
    for index, token in enumerate(_TOKEN.findall(compose_answer(prompt, await similarities(prompt)))):
        if delay and index:
            await asyncio.sleep(delay)
        yield token


def build_offline_model() -> FunctionModel:
    return FunctionModel(stream_function=_stream, model_name=OFFLINE_MODEL_NAME)
