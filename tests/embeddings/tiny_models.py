"""Tiny BERT models written by the tests (random weights, MiniLM's tokenizer), for the code paths that real
weights cannot reach here: a model outside the table, another dimension, a cross-encoder reranker.

No PyPI package ships reranker weights, so reranker tests check structure, ordering and errors; quality is
only measured where real weights exist.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from embeddings.model_files import minilm_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def _bert_weights(
    rng: np.random.Generator, *, hidden: int, layers: int, vocab: int, prefix: str
) -> dict[str, np.ndarray]:
    def normal(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    w = {
        "embeddings.word_embeddings.weight": normal(vocab, hidden),
        "embeddings.position_embeddings.weight": normal(512, hidden),
        "embeddings.token_type_embeddings.weight": normal(2, hidden),
        "embeddings.LayerNorm.weight": ones(hidden),
        "embeddings.LayerNorm.bias": zeros(hidden),
        "pooler.dense.weight": normal(hidden, hidden),
        "pooler.dense.bias": zeros(hidden),
    }
    inner = hidden * 2
    for n in range(layers):
        p = f"encoder.layer.{n}"
        for name in ("query", "key", "value"):
            w[f"{p}.attention.self.{name}.weight"] = normal(hidden, hidden)
            w[f"{p}.attention.self.{name}.bias"] = normal(hidden)
        w[f"{p}.attention.output.dense.weight"] = normal(hidden, hidden)
        w[f"{p}.attention.output.dense.bias"] = normal(hidden)
        w[f"{p}.attention.output.LayerNorm.weight"] = ones(hidden)
        w[f"{p}.attention.output.LayerNorm.bias"] = zeros(hidden)
        w[f"{p}.intermediate.dense.weight"] = normal(inner, hidden)
        w[f"{p}.intermediate.dense.bias"] = normal(inner)
        w[f"{p}.output.dense.weight"] = normal(hidden, inner)
        w[f"{p}.output.dense.bias"] = normal(hidden)
        w[f"{p}.output.LayerNorm.weight"] = ones(hidden)
        w[f"{p}.output.LayerNorm.bias"] = zeros(hidden)
    return {prefix + k: v for k, v in w.items()}


def _config(hidden: int, layers: int, vocab: int, **extra: object) -> dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_attention_heads": 4,
        "num_hidden_layers": layers,
        "max_position_embeddings": 512,
        "position_embedding_type": "absolute",
        "type_vocab_size": 2,
        "vocab_size": vocab,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        **extra,
    }


def _write(folder: Path, files: dict[str, object]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=1), encoding="utf-8")


def _tokenizer(folder: Path) -> int:
    for name in TOKENIZER_FILES:
        shutil.copyfile(minilm_dir() / name, folder / name)
    return int(json.loads((minilm_dir() / "config.json").read_text())["vocab_size"])


def tiny_sentence_model(
    folder: Path,
    *,
    hidden: int = 32,
    layers: int = 2,
    pooling: str = "cls",
    normalize: bool = False,
    max_seq_length: int = 128,
    prompts: dict[str, str] | None = None,
    seed: int = 7,
) -> Path:
    """A sentence-transformers model folder: BERT + pooling (+ Normalize), with prompts if given."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    vocab = _tokenizer(folder)
    save_file(
        _bert_weights(np.random.default_rng(seed), hidden=hidden, layers=layers, vocab=vocab, prefix=""),
        str(folder / "model.safetensors"),
    )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir(exist_ok=True)
    files: dict[str, object] = {
        "config.json": _config(hidden, layers, vocab),
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": max_seq_length, "do_lower_case": False},
        "1_Pooling/config.json": {
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    }
    if prompts:
        files["config_sentence_transformers.json"] = {"prompts": prompts, "default_prompt_name": None}
    _write(folder, files)
    return folder


def tiny_cross_encoder(folder: Path, *, hidden: int = 32, layers: int = 2, seed: int = 11) -> Path:
    """A BertForSequenceClassification with one label: what sentence-transformers' CrossEncoder loads."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    vocab = _tokenizer(folder)
    rng = np.random.default_rng(seed)
    weights = _bert_weights(rng, hidden=hidden, layers=layers, vocab=vocab, prefix="bert.")
    weights["classifier.weight"] = (rng.standard_normal((1, hidden)) * 0.5).astype(np.float32)
    weights["classifier.bias"] = np.zeros(1, dtype=np.float32)
    save_file(weights, str(folder / "model.safetensors"))
    config = _config(hidden, layers, vocab, architectures=["BertForSequenceClassification"], num_labels=1)
    config["id2label"] = {"0": "LABEL_0"}
    config["label2id"] = {"LABEL_0": 0}
    _write(folder, {"config.json": config})
    return folder
