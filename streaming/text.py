"""Text shortened for display: a citation's snippet, a conversation's title, the admin's lists."""

from __future__ import annotations


def shorten(text: str, limit: int) -> str:
    """``text`` with its whitespace collapsed and, if longer than ``limit`` characters, cut at a
    word boundary and ended with "…" (``limit`` characters at most)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
