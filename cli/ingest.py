"""Index the Milvus docs (or any markdown corpus) into Milvus. Run with --help for the options."""

from __future__ import annotations

import argparse
import sys
from functools import partial

from cli.common import add_common_args, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest.py",
        description=(
            "Load markdown files from a folder, a .zip or a URL to a zip, split them by headings and index "
            "them in Milvus. Re-running only embeds files that changed; chunks of deleted files are removed. "
            "An interrupted run leaves the previous index searchable. While scripts/serve.py holds the Milvus Lite "
            "index, the ingest runs in that server (same options and output); --source is then read by the server, "
            "which is on this machine (it records itself beside the index)."
        ),
        epilog="Settings (RAG_SOURCE, RAG_GLOB, MILVUS_URI, ...) come from the environment or .env; see README. "
        "With a server running, set RAG_SERVER_TOKEN too if it has one.",
    )
    parser.add_argument(
        "--source", help="folder, .zip or http(s) URL of a zip (default: RAG_SOURCE, the Milvus docs release)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--glob", help="files to index, relative to the corpus root (default: RAG_GLOB, en/faq/*.md)")
    which.add_argument("--all", action="store_true", help="index every .md and .json file of the corpus")
    parser.add_argument("--rebuild", action="store_true", help="build a fresh collection and swap it in when done")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="also delete chunks of files indexed from another --source that this source does not have "
        "(by default they are kept and counted)",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="if the Milvus Lite index is damaged, move it aside (kept, renamed with a timestamp) and build a "
        "fresh one; otherwise an ordinary ingest, which also restores chunks a damaged database lost",
    )
    parser.add_argument("--collection", help="collection name (default: MILVUS_COLLECTION, my_rag_collection)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_common_args(parser)
    return parser


def main(args: argparse.Namespace) -> int:
    from config.settings import get_settings
    from index.pipeline import run_ingest
    from loaders.sources import ALL_GLOB
    from server.client import ingest_server, remote_ingest

    settings = get_settings(collection=args.collection)
    server = ingest_server(settings)  # a running serve.py holds the Milvus Lite folder: it runs the ingest
    if server is not None:
        print(f"ingesting through the server at {server.url}", file=sys.stderr)
    ingest = run_ingest if server is None else partial(remote_ingest, server)
    report = ingest(
        settings,
        source=args.source,
        glob=ALL_GLOB if args.all else args.glob,
        rebuild=args.rebuild,
        progress=not args.no_progress,
        prune=args.prune,
        repair=args.repair,
    )
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for note in report.notes:
        print(note, file=sys.stderr)
    print(report.summary())
    return 0


def entry(argv: list[str] | None = None) -> int:
    """The command: arguments parsed, failures as one line and an exit code, LangSmith uploads waited for."""
    return run(main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(entry())
