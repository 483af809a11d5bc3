"""Choosing the embedding function by name."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.errors import ConfigError, EmbeddingModelError
from embeddings.factory import load_embedding_function
from embeddings.minilm import MiniLMOnnxEmbeddingFunction
from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[3]


def test_minilm_is_the_onnx_function(model_cache_dir: Path) -> None:
    fn = load_embedding_function(" MiniLM ", cache_dir=model_cache_dir, batch_size=8)
    assert isinstance(fn, MiniLMOnnxEmbeddingFunction) and fn.batch_size == 8


def test_unknown_name_lists_the_valid_ones(model_cache_dir: Path) -> None:
    with pytest.raises(EmbeddingModelError) as err:
        load_embedding_function("bge-m3", cache_dir=model_cache_dir)
    assert "'bge-m3'" in str(err.value) and err.value.exit_code == 2
    assert "RAG_EMBEDDING" in err.value.fix and "minilm" in err.value.fix
    assert "BAAI/bge-small-en-v1.5" in err.value.fix  # what a model id looks like


def test_bad_batch_size(model_cache_dir: Path) -> None:
    with pytest.raises(ConfigError, match="RAG_EMBEDDING_BATCH_SIZE"):
        load_embedding_function("minilm", cache_dir=model_cache_dir, batch_size=0)


_DEFAULT = """
from pathlib import Path
from embeddings.factory import load_embedding_function
from config.errors import EmbeddingModelError
try:
    load_embedding_function("default", cache_dir=Path("unused"))
except EmbeddingModelError as exc:
    print(exc)
else:
    print("LOADED")
"""


def test_default_without_the_hub_fails_fast_and_clearly(tmp_path: Path) -> None:
    # A fresh process whose hub is a closed local port and whose HF cache is empty: offline, here and in CI.
    # Unprobed, huggingface_hub retries with back-off for ~45 s before failing.
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "HF_HOME": str(tmp_path / "hf"),
    }
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _DEFAULT], env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "Hugging Face hub" in line and "RAG_EMBEDDING=minilm" in line, line
    assert elapsed < 20, f"took {elapsed:.1f} s"
