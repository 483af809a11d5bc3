"""`milvus-rag COMMAND ...`: the installed entry point, one subcommand per script in `scripts/`."""

from __future__ import annotations

import sys
from importlib import import_module

#: subcommand -> (module with `entry(argv)`, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("cli.ask", "answer a question from the Milvus docs (interactive without one)"),
    "ingest": ("cli.ingest", "index the docs into Milvus (incremental; --rebuild, --all)"),
    "serve": ("cli.serve", "serve the index over HTTP: OpenAI-compatible API, /api/ask, a web page"),
    "trace": ("cli.trace_view", "print a trace file written by `ask --trace FILE` as a tree"),
}


def usage() -> str:
    lines = ["usage: milvus-rag COMMAND [options]   (milvus-rag COMMAND --help for a command's options)", ""]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"error: unknown command {args[0]!r} — run: milvus-rag --help", file=sys.stderr)
        return 2
    entry = import_module(command[0]).entry
    return entry(args[1:])


if __name__ == "__main__":
    sys.exit(main())
