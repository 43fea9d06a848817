"""A knowledge-base document's Markdown as HTML for the source page: CommonMark without the
document's own HTML, images, or any link but http(s)."""

from __future__ import annotations

from urllib.parse import urlsplit

from markdown_it import MarkdownIt


def _http_only(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() in ("http", "https")


def http_url(url: str) -> str | None:
    """``url`` if it is an http(s) URL, else None (no ``javascript:`` link from a document)."""
    return url if url and _http_only(url) else None


# "html": False escapes the document's tags; images are off (the CSP would block foreign ones
# anyway, and a tracking pixel is not a citation).
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable("image")
_MARKDOWN.validateLink = _http_only  # type: ignore[method-assign]


def render_markdown(text: str) -> str:
    """Safe HTML of ``text``: every character of the document is escaped or Markdown's own."""
    return _MARKDOWN.render(text)
