"""Multi-turn use: `RunnableWithMessageHistory` keeps each session's conversation and feeds it to the chain.

python examples/chat_history.py "How is data stored in milvus?" "And where is the metadata kept?"

The chain takes `chat_history` beside `question`; with history it first rewrites a follow-up into a standalone
question (the `rewrite_query` step), so retrieval finds the right passages for "and where is ... kept?".
Histories here live in memory, keyed by session id; an app would use a persistent `BaseChatMessageHistory`.

langchain-core 1.x marks `RunnableWithMessageHistory` and `InMemoryChatMessageHistory` deprecated in favour
of LangGraph's persistence (checkpointers); both still work, and the chain itself only needs the
`chat_history` list, whichever component keeps it. The deprecation warnings are silenced below.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from langchain_core._api import LangChainDeprecationWarning
from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.runnables import Runnable
from langchain_core.runnables.history import RunnableWithMessageHistory

from chains import build_rag_chain, get_settings, redact_langsmith
from cli.common import add_common_args, run

warnings.filterwarnings("ignore", category=LangChainDeprecationWarning)

DEFAULT_QUESTIONS = ["How is data stored in milvus?", "And where is the metadata kept?"]


def with_history(rag: Runnable, histories: dict[str, InMemoryChatMessageHistory]) -> Runnable:
    def history(session_id: str) -> BaseChatMessageHistory:
        return histories.setdefault(session_id, InMemoryChatMessageHistory())

    return RunnableWithMessageHistory(
        rag,
        history,
        input_messages_key="question",
        history_messages_key="chat_history",
        output_messages_key="answer",
    )


def main(args: argparse.Namespace) -> int:
    settings = get_settings()
    redact_langsmith(settings)  # only matters with LANGSMITH_TRACING=true: no key is uploaded
    histories: dict[str, InMemoryChatMessageHistory] = {}
    chat = with_history(build_rag_chain(settings=settings), histories)
    config = {"configurable": {"session_id": args.session}}
    for question in args.questions or DEFAULT_QUESTIONS:
        result = chat.invoke({"question": question}, config=config)
        print(f"Q: {question}\nA: {result['answer']}")
        print("   sources: " + ", ".join(f"[{s['n']}] {s['heading']}" for s in result["sources"]) + "\n")
    print(f"session {args.session!r} holds {len(histories[args.session].messages)} messages")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chat_history.py", description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="*", help="the turns of the conversation, in order")
    parser.add_argument("--session", default="demo", help="session id (one history per id)")
    add_common_args(parser)
    return parser


if __name__ == "__main__":
    sys.exit(run(main, build_parser()))  # run() also waits for LangSmith's background uploads
