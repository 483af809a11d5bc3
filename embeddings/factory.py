"""Choosing the embedding function by name (`RAG_EMBEDDING`), importing only what that choice needs.

- `minilm` (default): all-MiniLM-L6-v2 on onnxruntime; files from the `[offline]` extra or the Hub.
- a Hugging Face model id (`BAAI/bge-small-en-v1.5`, `intfloat/multilingual-e5-small`, ...) or a local
  folder in sentence-transformers layout: BERT-like models on onnxruntime, others through pymilvus-model's
  `SentenceTransformerEmbeddingFunction` when the `[hub]` extra is installed.
- `minilm-sentence-transformers`, `default`: reference implementations through pymilvus-model.

Any other pymilvus-model embedding function plugs in from Python: `PymilvusEmbeddings(function)`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from config.errors import ConfigError, EmbeddingModelError
from embeddings.models import (
    CORE_FILES,
    MINILM,
    ST_FILES,
    ModelNameError,
    ModelSpec,
    is_bert_like,
    known_spec,
    looks_like_hub_id,
    spec_for_folder,
)

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from config.settings import Settings
    from embeddings.adapter import PymilvusEmbeddings

#: name -> what it is; the first is the default.
EMBEDDING_NAMES: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2 on onnxruntime (default; Hub download or the [offline] extra)",
    "<org>/<model>": "a Hugging Face sentence-embedding model id, e.g. BAAI/bge-small-en-v1.5",
    "<folder>": "a local model folder in sentence-transformers layout",
    "minilm-sentence-transformers": "all-MiniLM-L6-v2 through sentence-transformers/torch (slow reference)",
    "default": "pymilvus.model.DefaultEmbeddingFunction (paraphrase-albert from the Hugging Face hub)",
}
_VALID = (
    "set RAG_EMBEDDING to minilm, a Hugging Face model id (e.g. BAAI/bge-small-en-v1.5, "
    "intfloat/multilingual-e5-small) or a local model folder"
)
_HUB_EXTRA = "install the hub extra: pip install -e '.[hub]'"

# What pymilvus.model.DefaultEmbeddingFunction downloads (its constructor defaults).
_DEFAULT_ONNX_REPO = "GPTCache/paraphrase-albert-onnx"
_DEFAULT_TOKENIZER_REPO = "GPTCache/paraphrase-albert-small-v2"
_HUB_PROBE_TIMEOUT = 5.0

Kind = Literal["minilm", "onnx", "sentence-transformers", "minilm-sentence-transformers", "default"]


@dataclass(frozen=True)
class ResolvedModel:
    """What a `RAG_EMBEDDING` value names: how it runs, its files (downloaded if need be) and its spec."""

    kind: Kind
    spec: ModelSpec
    folder: Path | None = None
    #: For `sentence-transformers` models from the Hub: what to hand SentenceTransformer.
    source: str = ""
    revision: str | None = None


def resolve_model(name: str, *, cache_dir: Path, revision: str | None = None, progress: bool = True) -> ResolvedModel:
    """Resolve a name to a model, fetching its files into `cache_dir` if they are not there yet."""
    raw = (name or "").strip()
    key = raw.lower()
    if key in ("minilm", "minilm-sentence-transformers", "default"):
        if key == "default":
            return ResolvedModel("default", MINILM)
        from embeddings.minilm import minilm_folder

        folder = minilm_folder(Path(cache_dir), progress=progress)
        return ResolvedModel("minilm" if key == "minilm" else "minilm-sentence-transformers", MINILM, folder)
    if not raw:
        raise ConfigError("RAG_EMBEDDING is empty", _VALID)
    path = Path(raw).expanduser()
    if path.exists():
        return _resolve_folder(path, base=None, cache_dir=Path(cache_dir))
    spec = known_spec(raw)
    if spec is None and not looks_like_hub_id(raw):
        if any(sep in raw for sep in ("/", "\\")) or raw.startswith((".", "~")):
            raise ModelNameError(f"the model folder {raw!r} does not exist", _VALID)
        raise ModelNameError(f"unknown embedding {raw!r}", _VALID)
    if spec is MINILM and revision in (None, MINILM.revision):
        return resolve_model("minilm", cache_dir=cache_dir, progress=progress)
    spec = spec or ModelSpec(raw)
    rev = revision or spec.revision
    from embeddings.hub import download_model

    folder = download_model(
        spec.name,
        revision=rev,
        cache_dir=Path(cache_dir),
        files=("config.json",),
        optional=(*CORE_FILES[1:], *ST_FILES),
        sha256=spec.sha256 if rev == spec.revision else None,
        progress=progress,
    )
    return _resolve_folder(folder, base=spec, cache_dir=Path(cache_dir), hub_id=spec.name, revision=rev)


def _resolve_folder(
    folder: Path, *, base: ModelSpec | None, cache_dir: Path, hub_id: str = "", revision: str | None = None
) -> ResolvedModel:
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ModelNameError(
            f"{folder} is not a model folder (no config.json)",
            "point RAG_EMBEDDING at a sentence-transformers model folder or a Hugging Face model id",
        )
    if is_bert_like(folder):
        from embeddings.checksums import remembered_sha256

        sha = remembered_sha256(folder / "model.safetensors", cache_dir / "models")
        spec = spec_for_folder(folder, base=base, weights_sha256=sha)
        return ResolvedModel("minilm" if spec is MINILM else "onnx", spec, folder)
    spec = base or ModelSpec(name=str(folder), short=folder.name)
    source = hub_id or str(folder)
    return ResolvedModel("sentence-transformers", spec, folder, source=source, revision=revision)


def load_embedding_function(
    name: str, *, cache_dir: Path, batch_size: int = 32, revision: str | None = None, progress: bool = True
) -> Any:
    """A pymilvus-model embedding function: `encode_documents`, `encode_queries`, `dim`, and `model_id`."""
    if batch_size < 1:
        raise ConfigError(
            f"embedding batch size must be at least 1, got {batch_size}", "set RAG_EMBEDDING_BATCH_SIZE=32"
        )
    model = resolve_model(name, cache_dir=cache_dir, revision=revision, progress=progress)
    if model.kind == "default":
        return _pymilvus_default()
    if model.kind == "minilm":
        from embeddings.minilm import MiniLMOnnxEmbeddingFunction

        return MiniLMOnnxEmbeddingFunction(model.folder, cache_dir=cache_dir, batch_size=batch_size)
    if model.kind == "minilm-sentence-transformers":
        return _sentence_transformers_minilm(model.folder, cache_dir, batch_size)  # type: ignore[arg-type]
    if model.kind == "onnx":
        from embeddings.minilm import OnnxSentenceEmbeddingFunction

        return OnnxSentenceEmbeddingFunction(model.folder, spec=model.spec, cache_dir=cache_dir, batch_size=batch_size)  # type: ignore[arg-type]
    return _sentence_transformers(model, cache_dir, batch_size)


def token_window(settings: Settings) -> tuple[Tokenizer, int]:
    """The configured model's tokenizer and window, for the splitter: a chunk past the window would be
    truncated by the model and its tail never found. A passage prefix (E5's `passage: `) takes its tokens
    out of the window. `default`'s ALBERT window is larger than MiniLM's, so MiniLM's is its safe bound."""
    return _token_window(settings.embedding, Path(settings.cache_dir), getattr(settings, "embedding_revision", None))


@lru_cache(maxsize=8)
def _token_window(name: str, cache_dir: Path, revision: str | None) -> tuple[Tokenizer, int]:
    from embeddings.minilm import minilm_tokenizer
    from embeddings.model_files import MINILM_MAX_TOKENS, load_tokenizer

    model = resolve_model(name, cache_dir=cache_dir, revision=revision)
    if model.kind == "default" or model.folder is None or not (model.folder / "tokenizer.json").is_file():
        return minilm_tokenizer(cache_dir), MINILM_MAX_TOKENS
    tokenizer = load_tokenizer(model.folder)
    window = model.spec.max_tokens
    if window is None:  # sentence-transformers models outside the table: read as the ONNX path would
        window = spec_for_folder(model.folder, base=model.spec).max_tokens or MINILM_MAX_TOKENS
    prefix = model.spec.passage_prefix
    if prefix:
        window -= len(tokenizer.encode(prefix).ids) - len(tokenizer.encode("").ids)
    return tokenizer, int(window)


def build_embeddings(settings: Settings, *, show_progress: bool = False) -> PymilvusEmbeddings:
    """The LangChain embeddings the settings ask for."""
    from embeddings.adapter import PymilvusEmbeddings

    function = load_embedding_function(
        settings.embedding,
        cache_dir=settings.cache_dir,
        batch_size=settings.embedding_batch_size,
        revision=getattr(settings, "embedding_revision", None),
    )
    return PymilvusEmbeddings(function, show_progress=show_progress)


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (a dotted name imports its parents)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _sentence_transformers(model: ResolvedModel, cache_dir: Path, batch_size: int) -> Any:
    """Models the onnxruntime path cannot run (not BERT-like), through sentence-transformers (torch)."""
    missing = [m for m in ("sentence_transformers", "pymilvus.model") if not installed(m)]
    if missing:
        raise EmbeddingModelError(
            f"{model.spec.name} is not a BERT-like model, which only the sentence-transformers path runs, "
            f"and {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed",
            _HUB_EXTRA,
        )
    from pymilvus.model.dense import SentenceTransformerEmbeddingFunction

    kwargs: dict[str, Any] = {}
    if model.source != str(model.folder):
        kwargs = {"cache_folder": str(Path(cache_dir) / "models" / "sentence-transformers"), "revision": model.revision}
    try:
        function = SentenceTransformerEmbeddingFunction(
            model_name=model.source,
            batch_size=batch_size,
            query_instruction=model.spec.query_prefix,
            doc_instruction=model.spec.passage_prefix,
            device="cpu",
            normalize_embeddings=model.spec.normalize,
            **kwargs,
        )
    except Exception as exc:
        raise EmbeddingModelError(
            f"sentence-transformers cannot load {model.spec.name} ({str(exc).splitlines()[0][:200]})",
            "check the model id or folder, or use RAG_EMBEDDING=minilm",
        ) from exc
    tag = model.revision[:8] if model.revision else "local"
    weights = (model.folder / "model.safetensors") if model.folder else None
    if weights is not None and weights.is_file():
        from embeddings.checksums import remembered_sha256

        tag = remembered_sha256(weights, Path(cache_dir) / "models")[:8]
    function.model_id = f"{model.spec.label}@{tag}"
    return function


def _sentence_transformers_minilm(folder: Path, cache_dir: Path, batch_size: int) -> Any:
    """The reference implementation: same weights (checked the same way), loaded by sentence-transformers."""
    from embeddings.minilm import MINILM_MODEL_ID, verify_minilm_weights

    verify_minilm_weights(folder, cache_dir)
    if not (installed("sentence_transformers") and installed("pymilvus.model")):
        raise EmbeddingModelError(
            "RAG_EMBEDDING=minilm-sentence-transformers needs sentence-transformers and pymilvus-model",
            "use RAG_EMBEDDING=minilm (same vectors), or " + _HUB_EXTRA,
        )
    try:
        from pymilvus.model.dense import SentenceTransformerEmbeddingFunction

        function = SentenceTransformerEmbeddingFunction(model_name=str(folder), batch_size=batch_size, device="cpu")
    except ImportError as exc:
        raise EmbeddingModelError(
            f"sentence-transformers cannot be imported ({exc})", "use RAG_EMBEDDING=minilm, or " + _HUB_EXTRA
        ) from exc
    # Same weights, same vectors: an index built with one can be queried with the other.
    function.model_id = MINILM_MODEL_ID
    return function


def _pymilvus_default() -> Any:
    """pymilvus-model's default model, which only exists on the Hugging Face hub.

    Offline, huggingface_hub retries each file with back-off for ~45 s before failing; one quick probe of the
    hub (honouring HF_ENDPOINT and proxies) turns that into an immediate, explained error.
    """
    needs_hub = EmbeddingModelError(
        "RAG_EMBEDDING=default (pymilvus.model.DefaultEmbeddingFunction) downloads "
        f"{_DEFAULT_ONNX_REPO} from the Hugging Face hub, which is unreachable and not in the local cache",
        "use RAG_EMBEDDING=minilm (cached after one download, or the [offline] extra)",
    )
    if not installed("pymilvus.model"):
        raise EmbeddingModelError(
            "RAG_EMBEDDING=default (pymilvus.model.DefaultEmbeddingFunction) needs pymilvus-model",
            "use RAG_EMBEDDING=minilm, or " + _HUB_EXTRA,
        )
    if not _hub_reachable() and not _default_model_cached():
        raise needs_hub
    try:
        from pymilvus.model import DefaultEmbeddingFunction

        return DefaultEmbeddingFunction()
    except Exception as exc:  # network, hub or cache errors from three libraries
        raise EmbeddingModelError(
            f"pymilvus.model.DefaultEmbeddingFunction failed to load ({str(exc).splitlines()[0][:200]})",
            "it needs the Hugging Face hub; use RAG_EMBEDDING=minilm",
        ) from exc


def _hub_reachable() -> bool:
    try:
        import huggingface_hub
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError:
        return False
    try:
        huggingface_hub.model_info(_DEFAULT_ONNX_REPO, timeout=_HUB_PROBE_TIMEOUT)
    except HfHubHTTPError:
        return True  # the hub answered (e.g. 401/404); let the real loader report what it says
    except Exception:
        return False  # DNS, connection, timeout, offline mode
    return True


def _default_model_cached() -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    wanted = [(_DEFAULT_ONNX_REPO, "model.onnx"), (_DEFAULT_TOKENIZER_REPO, "config.json")]
    return all(isinstance(try_to_load_from_cache(repo, f), str) for repo, f in wanted)
