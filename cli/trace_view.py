"""Print a trace written by `ask.py --trace FILE` as an indented tree of steps with their durations.

python scripts/trace_view.py trace.jsonl            # the latest trace
python scripts/trace_view.py trace.jsonl --all      # every trace in the file
python scripts/trace_view.py trace.jsonl --compact  # hide LangChain's plumbing (RunnableSequence, ...)

The file holds one run per line (LangSmith's fields: id, parent_run_id, trace_id, name, run_type, start_time,
end_time, inputs, outputs, error, tags, metadata), so this shows offline what LangSmith shows online.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from cli.common import add_common_args, run
from config.errors import ConfigError

REQUIRED = ("id", "name", "run_type", "start_time")
FIX = 'write one with: python scripts/ask.py --trace {path} "How is data stored in milvus?"'
#: Runs LangChain creates to wire steps together; --compact shows their children in their place.
PLUMBING = ("RunnableSequence", "RunnableParallel<", "RunnableAssign<", "RunnableLambda", "RunnablePassthrough")
PREVIEW_CHARS = 300


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trace_view.py",
        description=(
            "Show the latest trace of a JSONL trace file (written by ask.py --trace FILE) as an indented tree: "
            "each step with its run type and duration, the sources a retriever returned, errors where they happened."
        ),
        epilog='Example: python scripts/ask.py --trace trace.jsonl "How is data stored in milvus?" && '
        "python scripts/trace_view.py trace.jsonl",
    )
    parser.add_argument("file", help="the JSONL trace file")
    parser.add_argument("--all", action="store_true", help="show every trace in the file, oldest first")
    parser.add_argument(
        "--compact", action="store_true", help="hide LangChain's wiring runs (RunnableSequence, RunnableAssign, ...)"
    )
    add_common_args(parser)
    return parser


def main(args: argparse.Namespace) -> int:
    records, skipped = load(Path(args.file))
    if skipped:
        first = skipped[0]
        print(
            f"warning: skipped {len(skipped)} line(s) of {args.file} that are not trace records (first: line {first})",
            file=sys.stderr,
        )
    traces = group(records)
    chosen = list(traces.values()) if args.all else [traces[next(reversed(traces))]]
    for n, runs in enumerate(chosen):
        if n:
            print()
        for line in render(runs, compact=args.compact):
            print(line)
    return 0


def load(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """The run records of the file and the numbers of the lines that are not run records."""
    fix = FIX.format(path=path)
    if not path.exists():
        raise ConfigError(f"no trace file at {path}", fix)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a trace file", "pass the JSONL file written by ask.py --trace")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not a trace file (not UTF-8 text)", "pass the JSONL file written by ask.py --trace"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", "check the path and its permissions") from None
    records: list[dict[str, Any]] = []
    skipped: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = _record(line)
        if record is None:
            skipped.append(number)
        else:
            records.append(record)
    if not records and not skipped:
        raise ConfigError(f"{path} is empty: no traces yet", fix)
    if not records:
        raise ConfigError(
            f"{path} is not a trace file: line {skipped[0]} is not a JSON run record",
            "pass the JSONL file written by ask.py --trace",
        )
    return records, skipped


def _record(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or any(not isinstance(record.get(k), str) for k in REQUIRED):
        return None
    record.setdefault("trace_id", record["id"])
    return record


def group(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs by trace id, ordered by the line where each trace ends (a trace is appended when it ends)."""
    traces: dict[str, list[dict[str, Any]]] = {}
    last_line: dict[str, int] = {}
    for number, record in enumerate(records):
        trace = str(record["trace_id"])
        traces.setdefault(trace, []).append(record)
        last_line[trace] = number
    return dict(sorted(traces.items(), key=lambda item: last_line[item[0]]))


def render(runs: list[dict[str, Any]], *, compact: bool = False) -> Iterator[str]:
    """The lines for one trace: a header (question, settings), the tree, the answer."""
    by_id = {r["id"]: r for r in runs}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for run_ in runs:
        parent = run_.get("parent_run_id")
        children.setdefault(parent if parent in by_id else None, []).append(run_)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r.get("dotted_order") or "", r["start_time"]))
    roots = children.get(None, [])
    root = roots[0]
    yield f"trace {root.get('trace_id') or root['id']}  {_when(root)}  {_duration(root)}"
    question = _question(root)
    if question:
        yield f"question: {question}"
    metadata = _top_metadata(root)
    if metadata:
        yield "metadata: " + "  ".join(f"{k}={v}" for k, v in metadata.items())
    if root.get("tags"):
        yield "tags: " + ", ".join(str(t) for t in root["tags"])
    yield ""
    for top in roots:
        yield from _tree(top, children, depth=0, compact=compact)
    answer = _answer(root)
    if answer:
        yield ""
        yield f"answer: {answer}"


def _tree(
    run_: dict[str, Any], children: dict[str | None, list[dict[str, Any]]], *, depth: int, compact: bool
) -> Iterator[str]:
    kids = children.get(run_["id"], [])
    if compact and depth > 0 and run_["name"].startswith(PLUMBING):
        for kid in kids:
            yield from _tree(kid, children, depth=depth, compact=compact)
        return
    indent = "  " * depth
    line = f"{indent}{run_['name']}  [{run_['run_type']}]  {_duration(run_)}"
    model = (run_.get("metadata") or {}).get("ls_model_name") if run_["run_type"] == "llm" else None
    if model:
        line += f"  model={model}"
    if run_.get("error"):
        line += f"  ERROR: {_first_line(run_['error'])}"
    yield line
    if run_["run_type"] == "retriever":
        for n, doc in enumerate(_documents(run_), start=1):
            yield f"{indent}    [{n}] {doc}"
    for kid in kids:
        yield from _tree(kid, children, depth=depth + 1, compact=compact)


def _documents(run_: dict[str, Any]) -> list[str]:
    """'source — heading (score)' for each document a retriever returned."""
    outputs = run_.get("outputs") or {}
    docs = outputs.get("documents") if isinstance(outputs, dict) else None
    lines = []
    for doc in docs if isinstance(docs, list) else []:
        metadata = (doc.get("metadata") if isinstance(doc, dict) else None) or {}
        source = metadata.get("source") or "(no source)"
        heading = metadata.get("heading") or metadata.get("title")
        score = metadata.get("score")
        text = f"{source} — {heading}" if heading else str(source)
        if isinstance(score, int | float):
            text += f" (score {score:.3f})"
        lines.append(text)
    return lines


def _question(root: dict[str, Any]) -> str | None:
    inputs = root.get("inputs")
    if isinstance(inputs, dict):
        for key in ("question", "input", "query"):
            if isinstance(inputs.get(key), str) and inputs[key].strip():
                return _preview(inputs[key])
    return None


def _answer(root: dict[str, Any]) -> str | None:
    outputs = root.get("outputs")
    if isinstance(outputs, dict):
        for key in ("answer", "output"):
            if isinstance(outputs.get(key), str) and outputs[key].strip():
                return _preview(outputs[key])
    return None


def _top_metadata(root: dict[str, Any]) -> dict[str, Any]:
    """The chain's own metadata; LangChain's `ls_*` keys and LangSmith's env echo stay out of the header."""
    metadata = root.get("metadata") or {}
    return {
        k: v
        for k, v in metadata.items()
        if isinstance(v, str | int | float | bool) and not k.startswith(("ls_", "LANGSMITH_", "LANGCHAIN_"))
    }


def _duration(run_: dict[str, Any]) -> str:
    start, end = _time(run_.get("start_time")), _time(run_.get("end_time"))
    if start is None or end is None:
        return "(unfinished)"
    return f"{(end - start).total_seconds() * 1000:.0f} ms"


def _when(run_: dict[str, Any]) -> str:
    start = _time(run_.get("start_time"))
    return start.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if start else ""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _first_line(text: Any) -> str:
    """The error itself: LangChain records `repr(error)` followed directly by the traceback."""
    lines = str(text).split("Traceback (most recent call last)", 1)[0].strip().splitlines()
    return _preview(lines[0]) if lines else ""


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def entry(argv: list[str] | None = None) -> int:
    """The command: arguments parsed, failures as one line and an exit code, LangSmith uploads waited for."""
    return run(main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(entry())
