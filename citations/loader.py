"""Read knowledge-base files (Markdown or text, optional YAML front matter) into documents.

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

from . import chunker
from .analysis import ANALYSIS_VERSION
from .language import SUPPORTED, detect_language

SUFFIXES = (".md", ".txt")
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
    """Files named directly (whatever their suffix, so a wrong one is reported) and the ``.md``/
    ``.txt`` files found below folders, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        else:
            yield path


def read_document(path: Path) -> Document:
    if not path.exists():
        raise DocumentError("no such file")
    if path.suffix.lower() not in SUFFIXES:
        raise DocumentError(f"unsupported file type {path.suffix or '(none)'}; use .md or .txt")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise DocumentError("binary file")
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
        title = match.group(1) if match else path.stem.replace("-", " ").replace("_", " ").capitalize()
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
        origin=origin_of(path),
        title=title[:300],
        url=url,
        language=language,
        content_hash=hashlib.sha256(raw + f"\nanalysis:{ANALYSIS_VERSION}".encode()).hexdigest(),
        chunks=chunks,
    )
