"""What every script shares: logging, one-line errors, exit codes, LangSmith uploads finished before exit.
Scripts parse arguments and call library code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from config.errors import RagError

INTERRUPTED = 130


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and debug logging")


def load_env_file() -> None:
    """`.env` in the working folder, into the environment (variables already set win): the settings read it
    anyway, and this way the variables other libraries read (LANGSMITH_*) can live there too."""
    from dotenv import load_dotenv

    load_dotenv(".env", override=False)


def run(
    main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> int:
    """Run `main`, turning known failures into one line on stderr and a non-zero exit code."""
    args = parser.parse_args(argv)
    load_env_file()
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s" if debug else "%(levelname)s: %(message)s",
    )
    if not debug:
        # pymilvus configures its loggers when first imported (resetting levels set before), then logs every
        # failed call with a traceback (a malformed filter, say): import it first, then quieten it.
        import pymilvus  # noqa: F401

        for noisy in ("pymilvus", "pymilvus.milvus_client", "milvus_lite", "grpc", "httpx", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        return main(args)
    except RagError as exc:
        if debug:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    finally:
        flush_traces()


def flush_traces() -> None:
    """A short-lived process must wait for LangSmith's background uploads, or the runs are lost; a run that
    never loaded LangChain's tracer has nothing to wait for (and does not pay for importing it)."""
    if "langchain_core.tracers.langchain" in sys.modules:
        from langchain_core.tracers.langchain import wait_for_all_tracers

        wait_for_all_tracers()
