"""The RAG chain as one step of a larger LCEL pipeline: tidy the question, answer it, render Markdown.

python examples/pipeline.py "How is data stored in milvus?" "What is the maximum vector dimension?"

Several questions go through `batch`, which runs them concurrently. Needs the index (`scripts/ingest.py`)
and DEEPSEEK_API_KEY (DEEPSEEK_BASE_URL for another endpoint) in the environment or `.env`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from chains import build_rag_chain, get_settings, redact_langsmith
from cli.common import add_common_args, run

DEFAULT_QUESTION = "How is data stored in milvus?"


def build_pipeline(rag: Runnable) -> Runnable[str, str]:
    """str → str: the chain's dict input and output are adapted on either side, as in any app."""
    return (
        RunnableLambda(tidy_question, name="tidy_question")
        | {"question": RunnablePassthrough()}
        | rag
        | RunnableLambda(to_markdown, name="to_markdown")
    ).with_config(run_name="markdown_answer")


def tidy_question(text: str) -> str:
    return " ".join(text.split())


def to_markdown(result: dict[str, Any]) -> str:
    lines = [result["answer"], "", "**Sources**", ""]
    lines += [f"{s['n']}. `{s['source']}` — {s['heading']}" for s in result["sources"]]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    settings = get_settings()
    redact_langsmith(settings)  # only matters with LANGSMITH_TRACING=true: no key is uploaded
    pipeline = build_pipeline(build_rag_chain(settings=settings))
    questions = args.questions or [DEFAULT_QUESTION]
    for n, markdown in enumerate(pipeline.batch(questions)):
        print(("\n---\n\n" if n else "") + f"## {tidy_question(questions[n])}\n\n{markdown}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeline.py", description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="*", help=f"questions (default: {DEFAULT_QUESTION!r})")
    add_common_args(parser)
    return parser


if __name__ == "__main__":
    sys.exit(run(main, build_parser()))  # run() also waits for LangSmith's background uploads
