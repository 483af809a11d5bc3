"""Measure `chains.language` on the project's own text: false positives on English, accuracy on foreign questions.

The detector decides which questions pay for a rewrite call, so the numbers that matter are how often it calls
English foreign (every English question in the eval sets, every heading of the docs corpus: short, identifier-heavy
English), how often it names a foreign question's language, and what one call costs. Prints a markdown table.

    python scripts/language_check.py
    python scripts/language_check.py --show-misses
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from chains.language import detect_language  # noqa: E402

SHARED = REPO.parent / "shared"
HEADING = re.compile(r"^#{1,6} +(.+?)\s*#*\s*$")


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def docs_text(zip_path: Path) -> tuple[list[str], list[str]]:
    """Headings and other prose lines of every `.md` file in the docs zip, outside fenced code blocks.

    Headings are what the issue asks about (short, identifier-heavy English); every other line is a larger check
    of the same kind. Lines inside fences are code, where `#` starts a comment.
    """
    headings: list[str] = []
    lines: list[str] = []
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            if not name.endswith(".md"):
                continue
            in_fence = False
            for line in archive.read(name).decode("utf-8", errors="replace").splitlines():
                if line.lstrip().startswith(("```", "~~~")):
                    in_fence = not in_fence
                    continue
                if in_fence or not line.strip():
                    continue
                match = HEADING.match(line)
                if match:
                    headings.append(match.group(1))
                else:
                    lines.append(line.strip())
    return headings, lines


def false_positives(texts: list[str]) -> list[tuple[str, str]]:
    return [(text, lang) for text in texts if (lang := detect_language(text)) != "en"]


def time_calls(texts: list[str], rounds: int) -> tuple[float, float]:
    """Mean and p99 microseconds per call, each call timed alone."""
    samples: list[float] = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter_ns()
            detect_language(text)
            samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.fmean(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-dir", type=Path, default=SHARED / "eval", help="folder with dev.jsonl and "
                        "dev_multilingual.jsonl (default: %(default)s)")
    parser.add_argument("--docs-zip", type=Path, default=SHARED / "data" / "milvus_docs_2.4.x_en.zip",
                        help="the Milvus docs release zip (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=20, help="timing passes over all texts (default: %(default)s)")
    parser.add_argument("--show-misses", action="store_true", help="list every misfire and every wrong language")
    args = parser.parse_args(argv)

    for path in (args.eval_dir / "dev.jsonl", args.eval_dir / "dev_multilingual.jsonl", args.docs_zip):
        if not path.is_file():
            parser.error(f"{path} not found: pass --eval-dir / --docs-zip")
    dev = read_jsonl(args.eval_dir / "dev.jsonl")
    multi = read_jsonl(args.eval_dir / "dev_multilingual.jsonl")
    english = [row["question"] for row in dev] + [row["english"] for row in multi]
    headings, lines = docs_text(args.docs_zip)
    unique_headings = sorted(set(headings))
    unique_lines = sorted(set(lines))

    detect_language("warm-up")  # the tables are built on first use; keep that out of the timings
    fp_questions = false_positives(english)
    fp_headings = false_positives(unique_headings)
    fp_lines = false_positives(unique_lines)
    by_lang: dict[str, list[int]] = {}
    wrong: list[tuple[str, str, str]] = []
    for row in multi:
        got = detect_language(row["question"])
        counts = by_lang.setdefault(row["lang"], [0, 0])
        counts[0] += got == row["lang"]
        counts[1] += 1
        if got != row["lang"]:
            wrong.append((row["question"], row["lang"], got))
    timed = english + unique_headings + [row["question"] for row in multi]
    mean_us, p99_us = time_calls(timed, args.rounds)
    long_zh = "在 milvus 中如何为向量字段创建 HNSW 索引并设置参数？" * 400
    long_mean, long_p99 = time_calls([long_zh], 200)

    print("| measure | value |")
    print("| --- | --- |")
    print(f"| false positives, English eval questions | {len(fp_questions)} / {len(english)} "
          f"({100 * len(fp_questions) / len(english):.2f}%) |")
    print(f"| false positives, docs headings (unique) | {len(fp_headings)} / {len(unique_headings)} "
          f"({100 * len(fp_headings) / len(unique_headings):.2f}%; {len(headings)} headings in all) |")
    print(f"| false positives, other docs lines outside code (unique) | {len(fp_lines)} / {len(unique_lines)} "
          f"({100 * len(fp_lines) / len(unique_lines):.2f}%) |")
    for lang, (right, total) in sorted(by_lang.items()):
        print(f"| accuracy, dev_multilingual `{lang}` | {right} / {total} ({100 * right / total:.0f}%) |")
    all_right = sum(right for right, _ in by_lang.values())
    print(f"| accuracy, dev_multilingual all | {all_right} / {len(multi)} ({100 * all_right / len(multi):.0f}%) |")
    print(f"| time per call, eval questions (en + foreign) and headings | mean {mean_us:.1f} µs, p99 {p99_us:.1f} µs "
          f"({len(timed)} texts x {args.rounds}) |")
    print(f"| time per call, {len(long_zh)}-character Chinese question | mean {long_mean:.1f} µs, "
          f"p99 {long_p99:.1f} µs |")
    if args.show_misses:
        for text, lang in fp_questions + fp_headings + fp_lines:
            print(f"false positive ({lang}): {text}")
        for text, want, got in wrong:
            print(f"wrong language ({want} -> {got}): {text}")
    misfires = Counter(lang for _, lang in fp_questions + fp_headings + fp_lines)
    if misfires:
        print(f"\nfalse-positive verdicts by language: {dict(misfires)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
