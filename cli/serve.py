"""Serve the Milvus docs over HTTP: an OpenAI-compatible API, /api/ask, /health and a web page.

python scripts/serve.py [--host 127.0.0.1] [--port 8000]
"""

from __future__ import annotations

import argparse
import logging
import sys

from cli.common import add_common_args, run

EXAMPLE = "python scripts/serve.py --port 8000"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serve.py",
        description=(
            "Serve the index over HTTP: POST /v1/chat/completions (OpenAI-compatible, streaming), POST /api/ask, "
            "GET /health, and a web page at /. Binds 127.0.0.1 unless told otherwise; set RAG_SERVER_TOKEN to "
            "require 'Authorization: Bearer <token>'."
        ),
        epilog=f"Example: {EXAMPLE}. Settings: RAG_SERVER_* (host, port, token, CORS origins) and DEEPSEEK_*, "
        "MILVUS_*, RAG_* from the environment or .env.",
    )
    parser.add_argument("--host", help="address to listen on (default: RAG_SERVER_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: RAG_SERVER_PORT, 8000; 0 picks a free one)")
    parser.add_argument("--threads", type=int, help="threads for blocking work (default: RAG_SERVER_THREADS)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    add_common_args(parser)
    return parser


def main(args: argparse.Namespace) -> int:
    from config.settings import get_settings
    from server.run import serve
    from server.settings import get_server_settings

    if not args.debug:
        for name in ("server", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.INFO)
        if args.access_log:
            logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    settings = get_settings()
    server_settings = get_server_settings(host=args.host, port=args.port, threads=args.threads)
    return serve(settings, server_settings, access_log=args.access_log)


def entry(argv: list[str] | None = None) -> int:
    """The command: arguments parsed, failures as one line and an exit code, LangSmith uploads waited for."""
    return run(main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(entry())
