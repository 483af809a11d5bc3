"""Measure retrieval on a question set: the seed's pipeline, dense and hybrid. Run with --help for the options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import add_common_args, run
from evaluation.quality import SYSTEMS

REPO = Path(__file__).resolve().parents[1]
DEFAULT_QUESTIONS = REPO.parent / "shared" / "eval" / "dev.jsonl"
DEFAULT_OUT = REPO / "reports"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description=(
            "Index the corpus (every .md and .json file unless --glob) into the evaluation's own collection, "
            "then, for each system, search every question and print hit@1/3/5, MRR and warm retrieval "
            "latency (p50/p95). A hit is a retrieved chunk containing the question's gold span (markdown "
            "markup and whitespace normalised, case-sensitive). Writes evaluation.json and evaluation.png."
        ),
        epilog=(
            "Systems: baseline = the seed's pipeline (files split on '# ', dense search, same model, in a "
            "temporary database); dense and hybrid = the project's retriever in that mode (RAG_RRF_K and "
            "RAG_HYBRID_WEIGHTS apply). The evaluation index lives in RAG_DATA_DIR/evaluation (one collection "
            "per source and glob, updated incrementally); your own index is not touched."
        ),
    )
    parser.add_argument(
        "--questions", type=Path, default=DEFAULT_QUESTIONS,
        help="JSONL of {\"question\", \"gold\"} (default: ../shared/eval/dev.jsonl beside the repository)",
    )
    parser.add_argument("--source", help="folder, .zip or URL of a zip (default: RAG_SOURCE)")
    parser.add_argument(
        "--glob", action="append",
        help="files to evaluate over, relative to the corpus root; repeatable (default: all .md and .json files)",
    )
    parser.add_argument("--k", type=int, default=5, help="chunks retrieved per question (default 5)")
    parser.add_argument(
        "--modes", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), metavar="SYSTEM",
        help="which of baseline, dense, hybrid to measure (default: all three)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per question; its latency is the median")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the report (default: ./reports)")
    parser.add_argument("--data-dir", type=Path, help="Milvus Lite folder for the evaluation index")
    parser.add_argument(
        "--rewrite", choices=["none", "oracle", "model"], default="none",
        help="what is searched: the question as asked (default), its 'english' field (oracle: the upper bound "
        "for a translated set such as dev_multilingual.jsonl), or the chain's rewrite through DeepSeek (model; "
        "needs DEEPSEEK_API_KEY)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_common_args(parser)
    return parser


def main(args: argparse.Namespace) -> int:
    from config.settings import get_settings
    from evaluation.quality import run_evaluation, write_report

    report = run_evaluation(
        get_settings(),
        args.questions,
        source=args.source,
        glob=args.glob,
        systems=args.modes,
        k=args.k,
        repeat=args.repeat,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        rewrite=args.rewrite,
    )
    json_path, png_path = write_report(report, args.out)
    print(f"{report.n_questions} questions, corpus {', '.join(report.glob)} of {report.source}")
    print(report.table())
    print(f"report: {json_path}")
    print(f"chart:  {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, build_parser()))
