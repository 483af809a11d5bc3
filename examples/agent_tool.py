"""The RAG chain as a tool (`as_tool`) that a tool-calling agent decides to call.

python examples/agent_tool.py "How is data stored in milvus?"

The agent is LangChain's `create_agent` over the same DeepSeek model; it sees one tool, `milvus_docs`, which
runs the whole chain (retrieve → cite → answer) and returns the cited answer with its sources. Prints each
step of the conversation: the tool call, what the tool returned, the agent's final answer.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from langchain_core._api import LangChainBetaWarning
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from chains import build_llm, build_rag_chain, get_settings, redact_langsmith
from cli.common import add_common_args, run

DEFAULT_QUESTION = "How is data stored in milvus?"
SYSTEM_PROMPT = (
    "You help developers use Milvus, the vector database. For any question about Milvus, call the milvus_docs "
    "tool and answer from what it returns, keeping its [n] citations."
)


class DocsQuestion(BaseModel):
    """What the model must supply to call the tool (the chain's chat_history stays out of the tool's schema)."""

    question: str = Field(description="a self-contained question about Milvus")


def docs_tool(rag: Runnable) -> BaseTool:
    warnings.filterwarnings("ignore", category=LangChainBetaWarning)  # as_tool is marked beta
    return (rag | RunnableLambda(answer_with_sources, name="answer_with_sources")).as_tool(
        name="milvus_docs",
        description="Answers a question from the Milvus 2.4 documentation, citing passages as [n] with sources.",
        args_schema=DocsQuestion,
    )


def answer_with_sources(result: dict[str, Any]) -> str:
    """A tool returns text to the model: the answer, then the sources its [n] refer to."""
    sources = "\n".join(f"[{s['n']}] {s['source']} — {s['heading']}" for s in result["sources"])
    return f"{result['answer']}\n\nSources:\n{sources}"


def main(args: argparse.Namespace) -> int:
    from langchain.agents import create_agent

    settings = get_settings()
    redact_langsmith(settings)  # only matters with LANGSMITH_TRACING=true: no key is uploaded
    agent = create_agent(
        build_llm(settings), tools=[docs_tool(build_rag_chain(settings=settings))], system_prompt=SYSTEM_PROMPT
    )
    result = agent.invoke({"messages": [{"role": "user", "content": args.question}]})
    for message in result["messages"]:
        for call in getattr(message, "tool_calls", None) or []:
            print(f"tool call: {call['name']}({call['args']})")
        if message.type == "tool":
            print(f"tool result:\n{message.content}\n")
    print(f"answer: {result['messages'][-1].content}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent_tool.py", description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION, help="what to ask the agent")
    add_common_args(parser)
    return parser


if __name__ == "__main__":
    sys.exit(run(main, build_parser()))  # run() also waits for LangSmith's background uploads
