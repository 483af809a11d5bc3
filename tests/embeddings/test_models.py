"""Models by name or folder (RAG_EMBEDDING): run as their files describe, the splitter's window following the
model, and a model that does not fit the index refused with the rebuild hint."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from config.errors import EmbeddingModelError
from config.settings import get_settings
from embeddings import factory
from embeddings.factory import load_embedding_function, token_window
from embeddings.minilm import MINILM_MODEL_ID, MiniLMOnnxEmbeddingFunction, OnnxSentenceEmbeddingFunction
from embeddings.model_files import minilm_dir
from tests.embeddings.tiny_models import tiny_sentence_model

QUERIES = ["How does Milvus store data?", "Which index types are there?"]
PASSAGES = ["Milvus stores data in segments.", "", "Partitions split a collection into parts that can be searched."]


@pytest.fixture(scope="module")
def tiny_e5_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Outside the table: CLS pooling, no normalisation, E5-style prompts, a 128-token window, 32 dimensions."""
    return tiny_sentence_model(
        tmp_path_factory.mktemp("tiny") / "tiny-e5-like",
        pooling="cls",
        normalize=False,
        max_seq_length=128,
        prompts={"query": "query: ", "document": "passage: "},
    )


def test_a_folder_with_the_minilm_files_is_the_default_model(
    tmp_path: Path, model_cache_dir: Path, minilm: MiniLMOnnxEmbeddingFunction
) -> None:
    folder = tmp_path / "my-models" / "minilm"
    folder.mkdir(parents=True)
    for item in minilm_dir().iterdir():
        os.symlink(item, folder / item.name)
    fn = load_embedding_function(str(folder), cache_dir=model_cache_dir)
    # Same weights, so the same recorded model: an index built with `minilm` keeps answering.
    assert fn.model_id == minilm.model_id == MINILM_MODEL_ID and fn.dim == 384
    np.testing.assert_allclose(
        np.stack(fn.encode_queries(QUERIES)), np.stack(minilm.encode_queries(QUERIES)), atol=1e-6
    )


def test_a_model_outside_the_table_runs_as_its_files_describe(tiny_e5_like: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    ours = load_embedding_function(str(tiny_e5_like), cache_dir=tmp_path / "cache")
    assert isinstance(ours, OnnxSentenceEmbeddingFunction)  # BERT-like: onnxruntime, no torch at run time
    assert ours.dim == 32 and ours.model_id.startswith("tiny-e5-like@")
    reference = SentenceTransformer(str(tiny_e5_like), device="cpu")
    expected_q = reference.encode(["query: " + q for q in QUERIES], convert_to_numpy=True)
    expected_p = reference.encode(["passage: " + p for p in PASSAGES], convert_to_numpy=True)
    np.testing.assert_allclose(np.stack(ours.encode_queries(QUERIES)), expected_q, atol=1e-4)
    np.testing.assert_allclose(np.stack(ours.encode_documents(PASSAGES)), expected_p, atol=1e-4)
    assert not np.allclose(np.linalg.norm(expected_q, axis=1), 1.0)  # not normalised, as its modules say


def test_the_splitter_window_follows_the_model(tiny_e5_like: Path, tmp_path: Path, model_cache_dir: Path) -> None:
    tokenizer, window = token_window(get_settings(embedding=str(tiny_e5_like), cache_dir_override=tmp_path / "c"))
    prefix_tokens = len(tokenizer.encode("passage: ").ids) - len(tokenizer.encode("").ids)
    assert prefix_tokens > 0
    assert window == 128 - prefix_tokens  # the model's window, less what its passage prompt takes
    _, default_window = token_window(get_settings(cache_dir_override=model_cache_dir))
    assert default_window == 256


def test_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(EmbeddingModelError, match="is not a model folder"):
        load_embedding_function(str(tmp_path / "notes"), cache_dir=tmp_path / "cache")
    with pytest.raises(EmbeddingModelError, match="does not exist"):
        load_embedding_function(str(tmp_path / "missing"), cache_dir=tmp_path / "cache")


def test_a_model_only_sentence_transformers_runs_needs_the_hub_extra(
    tiny_e5_like: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mpnet-like"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "mpnet", "hidden_size": 32}')
    real = importlib.util.find_spec
    monkeypatch.setattr(
        factory.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sentence_transformers" else real(name, *a),
    )
    with pytest.raises(EmbeddingModelError) as err:
        load_embedding_function(str(folder), cache_dir=tmp_path / "cache")
    assert "not a BERT-like model" in str(err.value) and "pip install -e '.[hub]'" in err.value.fix


def test_a_model_of_another_dimension_is_refused_and_the_index_kept(tiny_e5_like: Path, tmp_path: Path) -> None:
    from embeddings.adapter import PymilvusEmbeddings
    from index.store import create_collection, describe, open_client, open_vectorstore, release

    settings = get_settings(data_dir_override=tmp_path / "data", cache_dir_override=tmp_path / "cache")
    client = open_client(settings)
    try:
        create_collection(client, settings.collection, dim=384, embedding_model=MINILM_MODEL_ID, bm25=True)
        tiny = PymilvusEmbeddings(load_embedding_function(str(tiny_e5_like), cache_dir=settings.cache_dir))
        with pytest.raises(EmbeddingModelError) as err:
            open_vectorstore(settings, tiny, embedding_model=tiny.model_id, dim=tiny.dim or 0, client=client)
        assert "(384 dims)" in str(err.value) and "(32 dims)" in str(err.value) and "--rebuild" in err.value.fix
        info = describe(client, settings.collection)
        assert info is not None and (info.embedding_model, info.dim) == (MINILM_MODEL_ID, 384)
    finally:
        release(settings, client)


def test_a_hub_model_by_id_is_downloaded_checked_and_run(
    tiny_e5_like: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.hf_server import FakeHub, repo_from_folder

    cache = tmp_path / "cache"
    by_folder = load_embedding_function(str(tiny_e5_like), cache_dir=cache)
    with FakeHub({"acme/tiny-e5-like": repo_from_folder(tiny_e5_like)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        by_id = load_embedding_function("acme/tiny-e5-like", cache_dir=cache)
        np.testing.assert_allclose(
            np.stack(by_id.encode_queries(QUERIES)), np.stack(by_folder.encode_queries(QUERIES)), atol=1e-6
        )
        assert by_id.dim == 32 and by_id.model_id.startswith("tiny-e5-like@")

        # Weights that do not match the sha256 the Hub states for them are refused, and nothing is cached.
        hub.faults.corrupt.add("model.safetensors")
        with pytest.raises(EmbeddingModelError, match="refusing model.safetensors"):
            load_embedding_function("acme/tiny-e5-like", cache_dir=tmp_path / "other", revision="main")
        assert not list((tmp_path / "other").rglob("model.safetensors"))

        with pytest.raises(EmbeddingModelError) as err:
            load_embedding_function("acme/tiny-e5-like", cache_dir=cache, revision="no-such-branch")
        assert "no revision 'no-such-branch'" in str(err.value) and err.value.exit_code == 2
