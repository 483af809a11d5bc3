"""Swapping parts: another chat model (`ChatDeepSeek`) and another retriever (the docs index plus your notes).

python examples/swap_parts.py "Where does Milvus keep its metadata?"

`build_rag_chain(retriever=..., llm=...)` takes any runnable str → list[Document] and any chat model:
- the chat model here is `langchain_deepseek.ChatDeepSeek`, which keeps deepseek-reasoner's reasoning in
  `additional_kwargs` (the default `ChatOpenAI` drops it); the answer never contains it either way;
- the retriever is an `EnsembleRetriever` fusing (by reciprocal rank) the project's Milvus index with an
  in-memory vector store of your own notes, embedded by the same model as the index.
"""

from __future__ import annotations

import argparse
import sys

from langchain_classic.retrievers import EnsembleRetriever
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import InMemoryVectorStore

from chains import Settings, build_rag_chain, build_retriever, get_settings, redact_langsmith
from chains.llm import KEY_FIX
from cli.common import add_common_args, run
from config.errors import ConfigError

DEFAULT_QUESTION = "Where does Milvus keep its metadata?"
NOTES = [
    Document(
        "Our team runs Milvus with etcd on three nodes; metadata backups run nightly at 02:00.",
        metadata={"source": "notes/ops.md", "heading": "Team notes > Metadata backups"},
    ),
    Document(
        "Staging uses a single MinIO bucket per cluster with its own minio.rootPath.",
        metadata={"source": "notes/ops.md", "heading": "Team notes > Object storage"},
    ),
]


def deepseek_model(settings: Settings) -> BaseChatModel:
    from langchain_deepseek import ChatDeepSeek

    key = settings.deepseek_api_key
    if key is None or not key.get_secret_value().strip():
        raise ConfigError("DEEPSEEK_API_KEY is not set", KEY_FIX)
    return ChatDeepSeek(
        model=settings.deepseek_model,
        api_key=settings.deepseek_api_key,
        api_base=settings.deepseek_base_url,
        temperature=settings.deepseek_temperature,
        timeout=settings.deepseek_timeout,
        max_retries=settings.deepseek_max_retries,
    )


def docs_and_notes(settings: Settings, k: int) -> BaseRetriever:
    docs = build_retriever(settings, k=k)
    notes = InMemoryVectorStore(docs.store.embeddings)  # the index's own embedding model, loaded once
    notes.add_documents(NOTES)
    return EnsembleRetriever(retrievers=[docs, notes.as_retriever(search_kwargs={"k": k})], weights=[0.5, 0.5])


def main(args: argparse.Namespace) -> int:
    settings = get_settings()
    redact_langsmith(settings)  # only matters with LANGSMITH_TRACING=true: no key is uploaded
    llm = deepseek_model(settings)
    rag = build_rag_chain(retriever=docs_and_notes(settings, args.k), llm=llm, settings=settings, k=args.k)
    result = rag.invoke({"question": args.question})
    print(f"chat model: {type(llm).__name__} ({settings.deepseek_model})")
    print(f"answer: {result['answer']}")
    for s in result["sources"]:
        print(f"  [{s['n']}] {s['source']} — {s['heading']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swap_parts.py", description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--k", type=int, default=4, help="passages to pass to the model (default 4)")
    add_common_args(parser)
    return parser


if __name__ == "__main__":
    sys.exit(run(main, build_parser()))  # run() also waits for LangSmith's background uploads
