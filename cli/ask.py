"""Ask the Milvus docs a question: retrieve passages, stream DeepSeek's cited answer, list the sources.

python scripts/ask.py "How is data stored in milvus?"
python scripts/ask.py                 # interactive: follow-up questions use the conversation
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from cli.common import add_common_args, run
from config.errors import ConfigError, NoIndexError, RagError, SourceError
from config.settings import MODES, check_k

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from config.settings import Settings

MAX_QUESTION_CHARS = 2000
EXAMPLE = 'python scripts/ask.py "How is data stored in milvus?"'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ask.py",
        description=(
            "Answer a question from the Milvus documentation: the best passages are retrieved from the index, "
            "DeepSeek writes an answer that cites them as [n], and the sources are listed. Without a question, "
            "starts an interactive session (Ctrl-D or 'exit' to leave). Without DEEPSEEK_API_KEY, prints the "
            "best passages. The first run builds the index from RAG_SOURCE if there is none."
        ),
        epilog=f"Example: {EXAMPLE}. Settings (DEEPSEEK_*, MILVUS_*, RAG_*) come from the environment or .env.",
    )
    parser.add_argument("question", nargs="?", help="the question (omit it for an interactive session)")
    parser.add_argument("--k", type=int, help="passages to retrieve (default: RAG_K, 3)")
    parser.add_argument("--mode", choices=MODES, help="retrieval mode (default: RAG_MODE)")
    parser.add_argument("--filter", help="Milvus expression on metadata, e.g. 'source like \"en/faq/%%\"'")
    parser.add_argument("--model", help="chat model (default: DEEPSEEK_MODEL, deepseek-chat)")
    parser.add_argument("--show-context", action="store_true", help="print the retrieved texts and scores as JSON")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (answer and sources) and nothing else"
    )
    parser.add_argument("--retrieve-only", action="store_true", help="print the top passages; do not call the model")
    parser.add_argument("--no-stream", action="store_true", help="print the answer when it is complete")
    parser.add_argument("--trace", metavar="FILE", help="append the run tree of each answer to FILE (JSONL)")
    add_common_args(parser)
    return parser


def check_question(question: str) -> str:
    """The question, trimmed and checked; bytes that are not UTF-8 (a terminal in another encoding, a pasted
    binary) become U+FFFD instead of breaking the tokenizer."""
    question = question.encode("utf-8", "surrogateescape").decode("utf-8", "replace").strip()
    if not question:
        raise ConfigError("the question is empty", f"ask something, e.g. {EXAMPLE}")
    if len(question) > MAX_QUESTION_CHARS:
        raise ConfigError(
            f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}",
            "shorten it to the question itself",
        )
    return question


def open_retriever(settings: Settings, args: argparse.Namespace, *, quiet: bool) -> Runnable:
    """The retriever over the index; on a first run, the index is built from the configured source. While
    `scripts/serve.py` holds a Milvus Lite index, its server answers instead (server.client)."""
    from server.client import remote_retriever

    remote = remote_retriever(settings, k=args.k, filter=args.filter)
    if remote is not None:
        return remote  # type: ignore[return-value] - answers ask.py's calls of a retriever
    from retrieval.retriever import build_retriever

    try:
        return build_retriever(settings, k=args.k, mode=args.mode, filter=args.filter, per_search=True)
    except NoIndexError:
        pass
    from index.pipeline import run_ingest

    print(
        f"No index yet: building it from {settings.source} (glob {settings.glob}); this happens once.", file=sys.stderr
    )
    try:
        report = run_ingest(settings, progress=not quiet)
    except SourceError as exc:
        raise NoIndexError(
            f"no index yet, and it cannot be built: {exc.problem}",
            "point RAG_SOURCE at the Milvus docs (folder, .zip or URL) or run: python scripts/ingest.py --source PATH",
        ) from None
    print(report.summary(), file=sys.stderr)
    return build_retriever(settings, k=args.k, mode=args.mode, filter=args.filter, per_search=True)


def print_sources(sources: list[dict[str, Any]]) -> None:
    if not sources:
        return
    print("\nSources:")
    for s in sources:
        print(f"  [{s['n']}] {s['source']} — {s['heading']}")


def print_passages(sources: list[dict[str, Any]]) -> None:
    for s in sources:
        score = f" (score {s['score']:.3f})" if isinstance(s.get("score"), float) else ""
        print(f"[{s['n']}] {s['source']} — {s['heading']}{score}\n{s['text']}\n")


def show_context(sources: list[dict[str, Any]], search_query: str) -> None:
    print(f"search query: {search_query}")
    print(json.dumps([[s["text"], s["score"]] for s in sources], indent=4, ensure_ascii=False))


def retrieve_only(retriever: Runnable, question: str, args: argparse.Namespace, config: dict) -> None:
    from chains.schemas import to_sources

    sources = to_sources(retriever.invoke(question, config=config))
    if args.json:
        payload = {"question": question, "answer": None, "sources": sources, "search_query": question}
        print(json.dumps(payload, ensure_ascii=False))
    elif args.show_context:
        show_context(sources, question)
    else:
        print_passages(sources)


def answer(chain: Runnable, question: str, history: list[Any], args: argparse.Namespace, config: dict) -> str:
    """Run the chain once; streams to stdout unless --json / --no-stream. Returns the answer text."""
    from chains import to_llm_error

    inputs = {"question": question, "chat_history": history}
    try:
        if args.json or args.no_stream:
            result = chain.invoke(inputs, config=config)
            if args.json:
                print(json.dumps({"question": question, **result}, ensure_ascii=False))
                return result["answer"]
            if args.show_context:
                show_context(result["sources"], result.get("search_query", question))
            print(result["answer"])
            print_sources(result["sources"])
            return result["answer"]
        sources: list[dict[str, Any]] = []
        parts: list[str] = []
        searched = question
        for chunk in chain.stream(inputs, config=config):
            searched = chunk.get("search_query", searched)
            if "sources" in chunk:
                sources = chunk["sources"]
                if args.show_context:
                    show_context(sources, searched)
            if "answer" in chunk:
                parts.append(chunk["answer"])
                sys.stdout.write(chunk["answer"])
                sys.stdout.flush()
        print()
        print_sources(sources)
        return "".join(parts)
    except RagError:
        raise
    except Exception as exc:
        error = to_llm_error(exc)
        if error is None:
            raise
        raise error from None


def main(args: argparse.Namespace) -> int:
    from chains.tracing import redact_langsmith
    from config.settings import get_settings

    settings = get_settings(
        k=check_k(args.k, name="--k") if args.k is not None else None, deepseek_model=args.model, mode=args.mode
    )
    redact_langsmith(settings)  # with LANGSMITH_TRACING on, no key (nor a fragment DeepSeek quotes) is uploaded
    question = check_question(args.question) if args.question is not None else None
    if args.json and question is None:
        raise ConfigError("--json needs a question", f"e.g. {EXAMPLE} --json")
    retriever = open_retriever(settings, args, quiet=args.json)
    has_key = settings.deepseek_api_key is not None and settings.deepseek_api_key.get_secret_value().strip()
    config: dict[str, Any] = {"configurable": {}, "run_name": "retrieve"}
    tracer = _tracer(args.trace)
    if tracer is not None:
        config["callbacks"] = [tracer]
    if args.retrieve_only or not has_key:
        if not args.retrieve_only:
            print(
                "DEEPSEEK_API_KEY is not set, so here are the best passages instead of an answer — "
                "set it in the environment or in .env (see .env.example) to get answers.",
                file=sys.stderr,
            )
        if question is not None:
            _say_untranslated(question)
            retrieve_only(retriever, question, args, config)
            return 0
        for q in interactive():
            _say_untranslated(q)
            _survive(retrieve_only, retriever, q, args, config)
        return 0

    from chains import build_rag_chain

    remote_chain = getattr(retriever, "remote_chain", None)  # a running server answers: server.client
    chain = remote_chain() if remote_chain else build_rag_chain(retriever=retriever, settings=settings)
    del config["run_name"]  # the chain names its own runs
    if question is not None:
        answer(chain, question, [], args, config)
        return 0
    history: list[tuple[str, str]] = []
    for q in interactive():
        text = _survive(answer, chain, q, history, args, config)
        if text is not None:
            history += [("human", q), ("ai", text)]
    return 0


def _survive(step: Any, *args: Any) -> Any:
    """One question of an interactive session: whatever goes wrong with it is one line, and the session goes on."""
    try:
        return step(*args)
    except RagError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - a session must outlive any single question
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        print(f"error: {type(exc).__name__}: {first} — run with --debug for the details", file=sys.stderr)
    return None


def _say_untranslated(question: str) -> None:
    """Without the model nothing translates the question, and the index is English: say so once per question."""
    from chains.language import detect_language, is_english, language_name

    if not is_english(question):
        print(
            f"note: this question looks {language_name(detect_language(question))}: it is searched as written, "
            "and the English docs match it poorly — an answer (DEEPSEEK_API_KEY set, no --retrieve-only) has it "
            "translated before the search; or ask in English.",
            file=sys.stderr,
        )


def interactive():  # noqa: ANN201 - a generator of questions
    """Questions typed at a prompt (or piped in) until Ctrl-D, 'exit' or 'quit'."""
    tty = sys.stdin.isatty()
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")  # a line in another encoding is a question, not a crash
    if tty:
        print("Ask about Milvus (Ctrl-D or 'exit' to leave).", file=sys.stderr)
    while True:
        try:
            line = input("> " if tty else "")
        except EOFError:
            if tty:
                print(file=sys.stderr)
            return
        if line.strip().lower() in {"exit", "quit", ":q"}:
            return
        if not line.strip():
            continue
        try:
            yield check_question(line)
        except ConfigError as exc:
            print(f"error: {exc.one_line()}", file=sys.stderr)


def _tracer(path: str | None) -> Any:
    if not path:
        return None
    try:
        from chains.tracing import JsonlTracer
    except ImportError as exc:  # pragma: no cover - the tracer ships with the chain
        raise ConfigError("--trace is not available in this install", "reinstall: pip install -e .") from exc
    return JsonlTracer(path)



def entry(argv: list[str] | None = None) -> int:
    """The command: arguments parsed, failures as one line and an exit code, LangSmith uploads waited for."""
    return run(main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(entry())
