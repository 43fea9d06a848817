"""Turn an uploaded or loaded file's bytes into Markdown (or per-page text, for a PDF).

Each format has a well-kept parser: pypdf (pure Python, text per page so passages keep their page
number), python-docx (paragraph style names give the headings) and markdownify on BeautifulSoup
(HTML to Markdown; scripts and styles dropped). The content is sniffed before parsing, so a file
whose extension lies is refused, and each parser is bounded against decompression bombs.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

# Bounds against decompression bombs: what a real guideline never comes near.
MAX_DOCX_UNCOMPRESSED = 200 * 1024 * 1024  # total of the zip entries' declared sizes
MAX_DOCX_RATIO = 200  # uncompressed / compressed, per entry larger than 1 MiB
MAX_PDF_PAGES = 2000
MAX_TEXT_CHARS = 20_000_000  # extracted text, any format

TEXT_SUFFIXES = (".md", ".txt")
SUFFIXES = (*TEXT_SUFFIXES, ".pdf", ".docx", ".html", ".htm")

_HTML_START = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|meta|title|div|p|h[1-6]|article|section)\b",
    re.IGNORECASE | re.DOTALL,
)


class FormatError(Exception):
    """A file that cannot be parsed; the message says why, in words a user understands."""


@dataclass(frozen=True)
class Parsed:
    """Markdown of the whole file, or (for a PDF) the text of each numbered page."""

    markdown: str = ""
    pages: tuple[tuple[int, str], ...] = ()
    title: str = ""


def sniff(suffix: str, raw: bytes) -> None:
    """Refuse a file whose content is not what its extension says."""
    is_pdf = raw.lstrip()[:5] == b"%PDF-"
    is_zip = raw[:4] == b"PK\x03\x04"
    if suffix == ".pdf":
        if not is_pdf:
            raise FormatError("not a PDF (the content does not start with %PDF-)")
    elif suffix == ".docx":
        if not is_zip or not _has_document_xml(raw):
            raise FormatError("not a DOCX (no word/document.xml inside a zip)")
    elif suffix in (".html", ".htm"):
        if not _HTML_START.match(raw[:4096]):
            raise FormatError("not HTML (the content does not start with markup)")
    elif is_pdf or is_zip:
        raise FormatError(f"the content is a {'PDF' if is_pdf else 'zip/DOCX'}, not {suffix} text")


def _has_document_xml(raw: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def parse(suffix: str, raw: bytes) -> Parsed:
    """Parse a PDF, DOCX or HTML file (``suffix`` lower-case, with its dot); sniffed first."""
    sniff(suffix, raw)
    if suffix == ".pdf":
        return _pdf(raw)
    if suffix == ".docx":
        return _docx(raw)
    return _html(raw)


def _pdf(raw: bytes) -> Parsed:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise FormatError("encrypted PDF; remove the password and upload it again")
        count = len(reader.pages)
        if count > MAX_PDF_PAGES:
            raise FormatError(f"PDF has {count} pages; the limit is {MAX_PDF_PAGES}")
        pages: list[tuple[int, str]] = []
        total = 0
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            total += len(text)
            if total > MAX_TEXT_CHARS:
                raise FormatError(f"PDF text exceeds {MAX_TEXT_CHARS:,} characters")
            if text:
                pages.append((number, text))
        title = str((reader.metadata or {}).get("/Title") or "").strip()
    except FormatError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FormatError(f"corrupt PDF ({exc.__class__.__name__})") from None
    if not pages:
        raise FormatError("no text layer; OCR is not supported")
    return Parsed(pages=tuple(pages), title=title)


def _check_zip_bomb(raw: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        infos = archive.infolist()
    # zipfile stops reading an entry at its declared size (then fails its CRC), so these bound
    # what parsing can inflate.
    total = sum(info.file_size for info in infos)
    if total > MAX_DOCX_UNCOMPRESSED:
        raise FormatError(f"DOCX unpacks to {total:,} bytes; the limit is {MAX_DOCX_UNCOMPRESSED:,}")
    for info in infos:
        if info.file_size > 1024 * 1024 and info.file_size > MAX_DOCX_RATIO * max(info.compress_size, 1):
            raise FormatError(f"DOCX entry {info.filename} is compressed suspiciously well (zip bomb?)")


def _docx(raw: bytes) -> Parsed:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from lxml.etree import LxmlError

    try:
        _check_zip_bomb(raw)
        document = docx.Document(io.BytesIO(raw))
        lines: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    lines.append(" | ".join(cell.text.strip() for cell in row.cells))
                lines.append("")
                continue
            text = block.text.strip()
            if not text:
                continue
            style = (block.style.name if block.style is not None else "") or ""
            level = _heading_level(style)
            if level:
                lines.extend([f"{'#' * level} {' '.join(text.split())}", ""])
            elif style.startswith("List"):
                lines.append(f"- {text}")
            else:
                lines.extend([text, ""])
        title = (document.core_properties.title or "").strip()
    except FormatError:
        raise
    except (zipfile.BadZipFile, PackageNotFoundError, LxmlError, KeyError, ValueError) as exc:
        raise FormatError(f"corrupt DOCX ({exc.__class__.__name__})") from None
    markdown = "\n".join(lines)
    if len(markdown) > MAX_TEXT_CHARS:
        raise FormatError(f"DOCX text exceeds {MAX_TEXT_CHARS:,} characters")
    return Parsed(markdown=markdown, title=title)


def _heading_level(style: str) -> int:
    """'Title' is level 1, 'Heading 2' level 2; other styles are body text."""
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading ([1-6])", style)
    return int(match.group(1)) if match else 0


def _html(raw: bytes) -> Parsed:
    from bs4 import BeautifulSoup
    from markdownify import ATX, MarkdownConverter

    soup = BeautifulSoup(raw, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    # Never kept: code, styling, embedded frames and forms are no part of a guideline's text.
    for tag in soup(["script", "style", "noscript", "template", "iframe", "object", "embed", "form", "head"]):
        tag.decompose()
    markdown = MarkdownConverter(heading_style=ATX, strip=["img"]).convert_soup(soup)
    if len(markdown) > MAX_TEXT_CHARS:
        raise FormatError(f"HTML text exceeds {MAX_TEXT_CHARS:,} characters")
    return Parsed(markdown=markdown, title=title)
