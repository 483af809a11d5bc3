"""Sentence-embedding models by name: where their files come from and how they are meant to be run.

`RAG_EMBEDDING` is `minilm` (the default), a Hugging Face model id (`BAAI/bge-small-en-v1.5`) or a local
folder in sentence-transformers layout. A model is run the way its authors document it (query and passage
prefixes, CLS or mean pooling, normalisation, window): the table below for known ones, otherwise read from
the sentence-transformers files the model ships (`modules.json`, `1_Pooling/config.json`,
`sentence_bert_config.json`, `config_sentence_transformers.json`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from config.errors import EmbeddingModelError
from embeddings.checksums import read_json
from embeddings.model_files import (
    MINILM_FILE_SHA256,
    MINILM_MAX_TOKENS,
    MINILM_NAME,
    MINILM_REVISION,
    MINILM_SAFETENSORS_SHA256,
)

Pooling = Literal["mean", "cls"]


class ModelNameError(EmbeddingModelError):
    """RAG_EMBEDDING names a model, revision or folder that does not exist: bad input, so CLIs exit 2."""

    exit_code = 2


#: What the onnxruntime path needs from a model folder.
CORE_FILES = ("config.json", "tokenizer.json", "model.safetensors")
#: sentence-transformers' description of the model, taken when present.
ST_FILES = ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "config_sentence_transformers.json")


@dataclass(frozen=True)
class ModelSpec:
    """How a model is run. Prefixes are what its card asks for; `max_tokens` None means "from its files"."""

    name: str
    short: str = ""
    query_prefix: str = ""
    passage_prefix: str = ""
    pooling: Pooling = "mean"
    normalize: bool = True
    max_tokens: int | None = None
    revision: str = "main"
    sha256: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.short or self.name.rsplit("/", 1)[-1]


MINILM = ModelSpec(
    MINILM_NAME,
    short="all-MiniLM-L6-v2",
    max_tokens=MINILM_MAX_TOKENS,
    revision=MINILM_REVISION,
    sha256=dict(MINILM_FILE_SHA256),
)

_BGE_QUERY = "Represent this sentence for searching relevant passages: "

#: Models whose documented usage is known; any other sentence-transformers model is read from its files.
KNOWN_MODELS: dict[str, ModelSpec] = {
    spec.name.lower(): spec
    for spec in (
        MINILM,
        ModelSpec("sentence-transformers/all-MiniLM-L12-v2", max_tokens=256),
        ModelSpec("sentence-transformers/multi-qa-MiniLM-L6-cos-v1", max_tokens=512),
        ModelSpec("BAAI/bge-small-en-v1.5", query_prefix=_BGE_QUERY, pooling="cls", max_tokens=512),
        ModelSpec("BAAI/bge-base-en-v1.5", query_prefix=_BGE_QUERY, pooling="cls", max_tokens=512),
        ModelSpec("intfloat/e5-small-v2", query_prefix="query: ", passage_prefix="passage: ", max_tokens=512),
        ModelSpec("intfloat/e5-base-v2", query_prefix="query: ", passage_prefix="passage: ", max_tokens=512),
        ModelSpec("intfloat/multilingual-e5-small", query_prefix="query: ", passage_prefix="passage: ", max_tokens=512),
    )
}
#: Short names for the table's models (`RAG_EMBEDDING=bge-small-en-v1.5` works too).
ALIASES: dict[str, str] = {"minilm": MINILM_NAME.lower()} | {
    spec.name.rsplit("/", 1)[-1].lower(): key for key, spec in KNOWN_MODELS.items()
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def known_spec(name: str) -> ModelSpec | None:
    key = name.strip().lower()
    return KNOWN_MODELS.get(ALIASES.get(key, key))


def looks_like_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name.strip())) and not Path(name).expanduser().exists()


def spec_for_folder(folder: Path, *, base: ModelSpec | None = None, weights_sha256: str | None = None) -> ModelSpec:
    """The spec of a model folder: the table's when its weights are a known model's (the MiniLM files, for
    instance, give the same vectors and the same recorded model id as `minilm`), else its own files'."""
    if weights_sha256 == MINILM_SAFETENSORS_SHA256:
        return MINILM
    spec = base or ModelSpec(name=str(folder), short=Path(folder).name)
    return _from_sentence_transformers_files(Path(folder), spec)


def _from_sentence_transformers_files(folder: Path, spec: ModelSpec) -> ModelSpec:
    """Fill what the table did not say from sentence-transformers' config files; the table wins."""
    changes: dict[str, object] = {}
    if spec.max_tokens is None:
        st = read_json(folder / "sentence_bert_config.json")
        config = read_json(folder / "config.json")
        window = st.get("max_seq_length") or config.get("max_position_embeddings") or 512
        changes["max_tokens"] = int(min(int(window), int(config.get("max_position_embeddings") or window)))
    if spec.name.lower() not in KNOWN_MODELS:
        pooling = read_json(folder / "1_Pooling" / "config.json")
        if pooling.get("pooling_mode_cls_token"):
            changes["pooling"] = "cls"
        elif pooling and not pooling.get("pooling_mode_mean_tokens", True):
            mode = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
            raise EmbeddingModelError(
                f"{spec.name} pools with {mode or 'an unknown mode'}, which the onnxruntime path does not run",
                "install the hub extra (pip install -e '.[hub]') to run it through sentence-transformers",
            )
        modules = read_json_list(folder / "modules.json")
        if modules:
            changes["normalize"] = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
        prompts = read_json(folder / "config_sentence_transformers.json").get("prompts") or {}
        if isinstance(prompts, dict):
            changes["query_prefix"] = str(prompts.get("query") or "")
            changes["passage_prefix"] = str(prompts.get("document") or prompts.get("passage") or "")
    return replace(spec, **changes)  # type: ignore[arg-type]


def read_json_list(path: Path) -> list[dict[str, object]]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def is_bert_like(folder: Path) -> bool:
    """What the onnxruntime graph builder can run: a BERT encoder (absolute positions, GELU) in safetensors,
    with a `tokenizer.json`."""
    config = read_json(folder / "config.json")
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") in ("gelu", None)
        and config.get("position_embedding_type", "absolute") == "absolute"
        and (folder / "model.safetensors").is_file()
        and (folder / "tokenizer.json").is_file()
    )
