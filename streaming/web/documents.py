"""A knowledge-base document's Markdown as HTML for the source page: CommonMark and tables,
without the document's own HTML, images, or any link but http(s)."""

from __future__ import annotations

from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore


def _http_only(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() in ("http", "https")


def http_url(url: str) -> str | None:
    """``url`` if it is an http(s) URL, else None (no ``javascript:`` link from a document)."""
    return url if url and _http_only(url) else None


# "html": False escapes the document's tags; images are off (the CSP would block foreign ones
# anyway, and a tracking pixel is not a citation).
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
_MARKDOWN.validateLink = _http_only  # type: ignore[method-assign]


def _alignment_as_class(state: StateCore) -> None:
    # markdown-it aligns a table column with a style attribute, which the page's CSP refuses.
    for token in state.tokens:
        style = token.attrs.pop("style", None) if token.type in ("th_open", "td_open") else None
        if isinstance(style, str) and style.startswith("text-align:"):
            token.attrJoin("class", "align-" + style.removeprefix("text-align:"))


_MARKDOWN.core.ruler.push("alignment_as_class", _alignment_as_class)


def render_markdown(text: str) -> str:
    """Safe HTML of ``text``: every character of the document is escaped or Markdown's own."""
    return _MARKDOWN.render(text)
