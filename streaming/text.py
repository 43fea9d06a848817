"""Text shortened for display: a citation's snippet, a conversation's title, the admin's lists."""

from __future__ import annotations

from markdown_it import MarkdownIt

# html off: a document's tags stay text (shown as such, never as markup); tables and strikethrough
# on, as the chat page renders them.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_MARKDOWN.validateLink = lambda url: True  # type: ignore[method-assign]  # only a link's text is kept
_INLINE_TEXT = {"text", "code_inline", "image"}  # an image's content is its alt text


def shorten(text: str, limit: int) -> str:
    """``text`` with its whitespace collapsed and, if longer than ``limit`` characters, cut at a
    word boundary and ended with "…" (``limit`` characters at most)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def plain_text(markdown: str) -> str:
    """The text of ``markdown`` without its syntax (no ``#``, ``**``, ``|``, list markers or link
    URLs): each block's text, separated by spaces."""
    parts: list[str] = []
    for token in _MARKDOWN.parse(markdown):
        if token.type == "inline":
            for child in token.children or ():
                if child.type in _INLINE_TEXT:
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append(" ")
        elif token.type in ("fence", "code_block"):
            parts.append(token.content)
        parts.append(" ")  # blocks (cells, items, paragraphs) apart
    return " ".join("".join(parts).split())
