"""Read knowledge-base files into documents: Markdown or text (optional YAML front matter), and
PDF, DOCX and HTML through ``formats.py``.

Reading is kept apart from writing (``services.py``): a file is fully parsed and checked before
anything touches the database, so a bad file is reported and skipped, never half-loaded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import frontmatter
import yaml
from django.conf import settings

from . import chunker, formats
from .analysis import ANALYSIS_VERSION
from .formats import SUFFIXES
from .language import SUPPORTED, detect_language

BUNDLED_CORPUS = Path(__file__).resolve().parent / "corpus"
_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


class DocumentError(Exception):
    """A file that cannot be loaded; the message says why, in words a user understands."""


@dataclass(frozen=True)
class Document:
    origin: str
    title: str
    url: str
    language: str
    content_hash: str
    chunks: list[chunker.TextChunk]


def origin_of(path: Path) -> str:
    """A stable name for a file: relative to the project when inside it, so the bundled corpus
    keeps its identity when the checkout moves."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(settings.BASE_DIR).as_posix()
    except ValueError:
        return resolved.as_posix()


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly (whatever their suffix, so a wrong one is reported) and the files of
    a known format found below folders, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        else:
            yield path


def max_bytes() -> int:
    return settings.EVI360_MAX_UPLOAD_MB * 1024 * 1024


def read_document(path: Path) -> Document:
    if not path.exists():
        raise DocumentError("no such file")
    if path.suffix.lower() not in SUFFIXES:
        raise DocumentError(f"unsupported file type {path.suffix or '(none)'}; use {', '.join(SUFFIXES)}")
    if path.stat().st_size > max_bytes():
        raise DocumentError(f"file is larger than EVI360_MAX_UPLOAD_MB={settings.EVI360_MAX_UPLOAD_MB}")
    return parse_document(origin_of(path), path.name, path.read_bytes())


def parse_document(origin: str, name: str, raw: bytes) -> Document:
    """A document from a file's bytes; ``name`` gives the format (its suffix) and a fallback title."""
    suffix = Path(name).suffix.lower()
    stem = Path(name).stem
    if suffix not in SUFFIXES:
        raise DocumentError(f"unsupported file type {suffix or '(none)'}; use {', '.join(SUFFIXES)}")
    if len(raw) > max_bytes():
        raise DocumentError(f"file is larger than EVI360_MAX_UPLOAD_MB={settings.EVI360_MAX_UPLOAD_MB}")
    content_hash = hashlib.sha256(raw + f"\nanalysis:{ANALYSIS_VERSION}".encode()).hexdigest()
    if suffix not in formats.TEXT_SUFFIXES:
        try:
            parsed = formats.parse(suffix, raw)
        except formats.FormatError as exc:
            raise DocumentError(str(exc)) from None
        body = parsed.markdown.strip() or "\n\n".join(text for _, text in parsed.pages)
        if not body:
            raise DocumentError("empty document")
        title = parsed.title
        if not title:
            match = _H1.search(body)
            title = match.group(1) if match else _title_from(stem)
        chunks = chunker.chunk_pages(parsed.pages) if parsed.pages else chunker.chunk_markdown(body)
        if not chunks:
            raise DocumentError("no text to index")
        return Document(origin, title[:300], "", detect_language(body[:2000]), content_hash, chunks)
    if b"\x00" in raw:
        raise DocumentError("binary file")
    try:
        formats.sniff(suffix, raw)
    except formats.FormatError as exc:
        raise DocumentError(str(exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not valid UTF-8 (byte {exc.start})") from None
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise DocumentError(f"invalid front matter: {exc.__class__.__name__}") from None
    body = post.content.strip()
    if not body:
        raise DocumentError("empty document")

    meta = post.metadata
    for key in ("title", "url", "language"):
        if key in meta and not isinstance(meta[key], str):
            raise DocumentError(f"front matter '{key}' must be text")
    title = (meta.get("title") or "").strip()
    if not title:
        match = _H1.search(body)
        title = match.group(1) if match else _title_from(stem)
    language = (meta.get("language") or "").strip().lower() or detect_language(body[:2000])
    if language not in SUPPORTED:
        raise DocumentError(f"front matter language {language!r} is not one of {', '.join(SUPPORTED)}")
    url = (meta.get("url") or "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise DocumentError("front matter 'url' must start with http:// or https://")

    chunks = chunker.chunk_markdown(body)
    if not chunks:
        raise DocumentError("no text to index")
    return Document(
        origin=origin,
        title=title[:300],
        url=url,
        language=language,
        content_hash=content_hash,
        chunks=chunks,
    )


def _title_from(stem: str) -> str:
    return stem.replace("-", " ").replace("_", " ").capitalize()
