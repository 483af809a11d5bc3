"""Choosing the embedding function by name (`RAG_EMBEDDING`), importing only what that choice needs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.errors import ConfigError, EmbeddingModelError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from config.settings import Settings
    from embeddings.adapter import PymilvusEmbeddings

#: name -> what it is; the first is the default.
EMBEDDING_NAMES: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2 on onnxruntime, bundled, offline (default)",
    "minilm-sentence-transformers": "the same model through sentence-transformers/torch (slow reference)",
    "default": "pymilvus.model.DefaultEmbeddingFunction (paraphrase-albert from the Hugging Face hub)",
}

# What pymilvus.model.DefaultEmbeddingFunction downloads (its constructor defaults).
_DEFAULT_ONNX_REPO = "GPTCache/paraphrase-albert-onnx"
_DEFAULT_TOKENIZER_REPO = "GPTCache/paraphrase-albert-small-v2"
_HUB_PROBE_TIMEOUT = 5.0


def load_embedding_function(name: str, *, cache_dir: Path, batch_size: int = 32) -> Any:
    """A pymilvus-model embedding function: `encode_documents`, `encode_queries`, `dim`, and `model_id`."""
    key = (name or "").strip().lower()
    if batch_size < 1:
        raise ConfigError(
            f"embedding batch size must be at least 1, got {batch_size}", "set RAG_EMBEDDING_BATCH_SIZE=32"
        )
    if key == "minilm":
        from embeddings.minilm import MiniLMOnnxEmbeddingFunction

        return MiniLMOnnxEmbeddingFunction(cache_dir=cache_dir, batch_size=batch_size)
    if key == "minilm-sentence-transformers":
        return _sentence_transformers_minilm(cache_dir, batch_size)
    if key == "default":
        return _pymilvus_default()
    valid = ", ".join(EMBEDDING_NAMES)
    raise EmbeddingModelError(f"unknown embedding {name!r}", f"set RAG_EMBEDDING to one of: {valid}")


def token_window(settings: Settings) -> tuple[Tokenizer, int]:
    """The configured model's tokenizer and window, for the splitter: a chunk past the window would be
    truncated by the model and its tail never found. Every model offered here reads MiniLM's word pieces
    within 256 tokens (`default`'s ALBERT window is larger, so MiniLM's is the safe bound)."""
    from embeddings.model_files import MINILM_MAX_TOKENS, load_tokenizer

    return load_tokenizer(), MINILM_MAX_TOKENS


def build_embeddings(settings: Settings, *, show_progress: bool = False) -> PymilvusEmbeddings:
    """The LangChain embeddings the settings ask for."""
    from embeddings.adapter import PymilvusEmbeddings

    function = load_embedding_function(
        settings.embedding, cache_dir=settings.cache_dir, batch_size=settings.embedding_batch_size
    )
    return PymilvusEmbeddings(function, show_progress=show_progress)


def _sentence_transformers_minilm(cache_dir: Path, batch_size: int) -> Any:
    """The reference implementation: same weights (checked the same way), loaded by sentence-transformers."""
    from embeddings.minilm import MINILM_MODEL_ID, verify_minilm_weights
    from embeddings.model_files import minilm_dir

    folder = minilm_dir()
    verify_minilm_weights(folder, cache_dir)
    try:
        from pymilvus.model.dense import SentenceTransformerEmbeddingFunction

        function = SentenceTransformerEmbeddingFunction(model_name=str(folder), batch_size=batch_size, device="cpu")
    except ImportError as exc:
        raise EmbeddingModelError(
            f"sentence-transformers cannot be imported ({exc})", "use RAG_EMBEDDING=minilm"
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
        "use RAG_EMBEDDING=minilm (bundled, works offline)",
    )
    if not _hub_reachable() and not _default_model_cached():
        raise needs_hub
    try:
        from pymilvus.model import DefaultEmbeddingFunction

        return DefaultEmbeddingFunction()
    except Exception as exc:  # network, hub or cache errors from three libraries
        raise EmbeddingModelError(
            f"pymilvus.model.DefaultEmbeddingFunction failed to load ({str(exc).splitlines()[0][:200]})",
            "it needs the Hugging Face hub; use RAG_EMBEDDING=minilm (bundled, works offline)",
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
