"""Split a Markdown (or plain text) document into passages of roughly 100-300 words.

Headings start a new section and are kept as the chunk's heading path ("Title > Section >
Subsection"); within a section, paragraphs are packed together up to the maximum, a paragraph
longer than the maximum is cut at sentence ends, and a short tail is merged into the chunk before
it so no chunk is a lone sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_WORDS = 100
MAX_WORDS = 300
HEADING_SEPARATOR = " > "

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class TextChunk:
    position: int
    heading_path: str
    text: str
    page: int | None = None  # the PDF page the passage is on


def _word_count(text: str) -> int:
    return len(text.split())


def _sections(markdown: str) -> list[tuple[str, list[str]]]:
    """(heading path, paragraphs) per heading, in document order."""
    sections: list[tuple[str, list[str]]] = []
    headings: list[tuple[int, str]] = []
    paragraphs: list[str] = []
    lines: list[str] = []

    def end_paragraph() -> None:
        if lines:
            paragraphs.append("\n".join(lines).strip())
            lines.clear()

    def end_section() -> None:
        end_paragraph()
        if paragraphs:
            sections.append((HEADING_SEPARATOR.join(title for _, title in headings), paragraphs.copy()))
            paragraphs.clear()

    in_code = False
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            end_section()
            level = len(match.group(1))
            headings[:] = [h for h in headings if h[0] < level]
            headings.append((level, match.group(2)))
        elif not line.strip() and not in_code:
            end_paragraph()
        else:
            lines.append(line)
    end_section()
    return sections


def _split_long(paragraph: str) -> list[str]:
    """Cut a paragraph longer than MAX_WORDS at sentence ends (or, failing that, at words)."""
    pieces: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        words = sentence.split()
        while len(words) > MAX_WORDS:  # a "sentence" without full stops
            if current:
                pieces.append(" ".join(current))
                current = []
            pieces.append(" ".join(words[:MAX_WORDS]))
            words = words[MAX_WORDS:]
        if len(current) + len(words) > MAX_WORDS and current:
            pieces.append(" ".join(current))
            current = []
        current.extend(words)
    if current:
        pieces.append(" ".join(current))
    return pieces


def chunk_markdown(markdown: str) -> list[TextChunk]:
    chunks: list[TextChunk] = []
    for heading_path, paragraphs in _sections(markdown):
        blocks: list[str] = []
        for paragraph in paragraphs:
            blocks.extend(_split_long(paragraph) if _word_count(paragraph) > MAX_WORDS else [paragraph])
        packed: list[list[str]] = []
        for block in blocks:
            if packed and sum(map(_word_count, packed[-1])) + _word_count(block) <= MAX_WORDS:
                packed[-1].append(block)
            else:
                packed.append([block])
        # A short tail reads better as part of the passage before it, if that stays in bounds.
        if len(packed) > 1:
            tail = sum(map(_word_count, packed[-1]))
            if tail < MIN_WORDS and sum(map(_word_count, packed[-2])) + tail <= MAX_WORDS * 1.2:
                packed[-2].extend(packed.pop())
        for group in packed:
            chunks.append(TextChunk(len(chunks), heading_path, "\n\n".join(group)))
    return chunks


def chunk_pages(pages: list[tuple[int, str]] | tuple[tuple[int, str], ...]) -> list[TextChunk]:
    """Passages of a PDF, page by page, so each carries its page number (numbered from 1)."""
    chunks: list[TextChunk] = []
    for number, text in pages:
        for chunk in chunk_markdown(text):
            chunks.append(TextChunk(len(chunks), chunk.heading_path, chunk.text, number))
    return chunks
