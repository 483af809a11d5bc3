"""Benchmark the project against the seed's pipeline on the same corpus, model and machine.

Every measurement runs in a fresh process (so peak RSS and cold starts are real), several times; medians
are reported with the ratio project / seed and whether each target holds. Writes JSON and a markdown table.
Warm retrieval latency: each side runs every query once untimed (the first pass in a fresh process is ~25%
slower while Milvus Lite warms up), then times one pass.

    python scripts/benchmark.py --source ../shared/data/milvus_docs_2.4.x_en.zip
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
DEFAULT_ZIP = REPO.parent / "shared" / "data" / "milvus_docs_2.4.x_en.zip"
FAQ = "en/faq/*.md"
QUESTION = "How is data stored in milvus?"


# ---- child jobs: each runs in its own process and prints one JSON object --------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _queries(zip_path: str, n: int) -> list[str]:
    """`n` questions a user might ask: the section headings of the docs, spread over the corpus."""
    from loaders.markdown import MarkdownCorpusLoader
    from loaders.sources import ALL_GLOB
    from loaders.splitter import sections

    docs = MarkdownCorpusLoader(zip_path, ALL_GLOB, progress=False).load()
    headings = sorted({s.path[-1] for d in docs for s in sections(d.page_content, d.metadata["title"]) if s.path})
    step = max(1, len(headings) // n)
    return (headings[::step] * n)[:n]


def child(job: str, args: argparse.Namespace) -> dict[str, Any]:
    if job == "project-ingest":
        from config.settings import get_settings
        from index.pipeline import run_ingest

        settings = get_settings(data_dir_override=Path(args.data))
        report = run_ingest(settings, source=args.source, glob=args.glob, progress=False)
        return {
            "seconds": report.seconds,
            "chunks": report.chunks_added + report.chunks_updated,
            "unchanged": report.chunks_unchanged,
            "rss_mb": _rss_mb(),
        }
    if job == "project-encode":
        from config.settings import get_settings
        from embeddings import build_embeddings, token_window
        from loaders.markdown import MarkdownCorpusLoader
        from loaders.splitter import MarkdownSplitter

        docs = MarkdownCorpusLoader(args.source, args.glob, progress=False).load()
        splitter = MarkdownSplitter.from_tokenizer(*token_window(get_settings()))
        texts = [c.page_content for c in splitter.split_documents(docs)]
        function = build_embeddings(get_settings()).embedding_function
        function.encode_documents(["warm up"])
        started = time.perf_counter()
        function.encode_documents(texts)
        return {"seconds": time.perf_counter() - started, "chunks": len(texts)}
    if job == "seed-ingest":
        from evaluation import seed_pipeline

        result = seed_pipeline.ingest(args.source, Path(args.data), args.glob)
        return {**result, "rss_mb": _rss_mb()}
    if job == "seed-encode":
        from evaluation import seed_pipeline

        texts, _ = seed_pipeline.seed_texts(args.source, args.glob)
        model = seed_pipeline.load_model()
        seed_pipeline.encode(model, ["warm up"])
        started = time.perf_counter()
        seed_pipeline.encode(model, texts)
        return {"seconds": time.perf_counter() - started, "chunks": len(texts)}
    if job == "project-search":
        from config.settings import get_settings
        from retrieval.retriever import build_retriever

        retriever = build_retriever(get_settings(data_dir_override=Path(args.data)), k=3, mode=args.mode)
        queries = _queries(args.source, args.queries)
        for query in queries:  # warm: one untimed pass, as for the seed
            retriever.invoke(query)
        times = []
        for query in queries:
            started = time.perf_counter()
            retriever.invoke(query)
            times.append((time.perf_counter() - started) * 1000)
        return {"latencies_ms": times}
    if job == "seed-search":
        from pymilvus import MilvusClient

        from evaluation import seed_pipeline

        model = seed_pipeline.load_model()
        client = MilvusClient(uri=str(Path(args.data) / "milvus.db"))
        client.load_collection(seed_pipeline.COLLECTION)
        queries = _queries(args.source, args.queries)
        times = []
        for query in [*queries, *queries]:  # warm: the first pass is not counted, as for the project
            started = time.perf_counter()
            seed_pipeline.search_index(client, seed_pipeline.encode(model, [query])[0], 3)
            times.append((time.perf_counter() - started) * 1000)
        return {"latencies_ms": times[len(queries) :]}
    raise SystemExit(f"unknown job {job}")


# ---- the parent: runs the jobs, repeats, reports -----------------------------------------------------------


def run_child(job: str, env: dict[str, str], **kw: Any) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", job]
    for key, value in kw.items():
        cmd += [f"--{key}", str(value)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"benchmark job {job} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def timed(cmd: list[str], env: dict[str, str], *, first_output: bool = False) -> float:
    """Seconds from process start to exit, or to its first byte on stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    elapsed = None
    if first_output:
        proc.stdout.read(1)
        elapsed = time.perf_counter() - started
    _, err = proc.communicate()
    elapsed = elapsed if elapsed is not None else time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')[-2000:]}")
    return elapsed


def median(values: list[float]) -> float:
    return statistics.median(values)


def latency(milliseconds: list[float]) -> dict[str, float]:
    """p50 and p95 by the evaluation harness' rule (one percentile definition behind every README figure)."""
    from evaluation.quality import percentile

    return {"p50_ms": percentile(milliseconds, 50), "p95_ms": percentile(milliseconds, 95)}


def source_bytes(zip_path: str, glob: str) -> int:
    import zipfile

    from loaders.sources import match_paths

    with zipfile.ZipFile(zip_path) as zf:
        sizes = {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()}
    return sum(sizes[p] for p in match_paths(list(sizes), glob))


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from loaders.sources import ALL_GLOB

    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    env = {
        **os.environ,
        "RAG_CACHE_DIR": str(work / "cache"),
        "RAG_DATA_DIR": str(work / "data-cold"),
        "PYTHONPATH": str(REPO),
    }
    for name in ("MILVUS_URI", "MILVUS_TOKEN", "RAG_EMBEDDING", "RAG_MODE", "LANGSMITH_TRACING"):
        env.pop(name, None)
    source = str(args.source)
    # The ONNX export is a one-time cost per machine; build it before anything is timed.
    run_child("project-encode", env, source=source, glob=FAQ)
    results: dict[str, Any] = {"source": source, "repeat": args.repeat, "ingest_repeat": args.ingest_repeat}
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731

    for label, glob in (("faq", FAQ), ("all", ALL_GLOB)):
        size = source_bytes(source, glob)
        for side in ("project", "seed"):
            runs = []
            for i in range(args.ingest_repeat):
                say(f"ingest {label} ({side}) {i + 1}/{args.ingest_repeat}")
                runs.append(
                    run_child(f"{side}-ingest", env, source=source, glob=glob, data=work / f"{side}-{label}-{i}")
                )
            encodes = []
            for i in range(args.ingest_repeat):
                say(f"model-only encode {label} ({side}) {i + 1}/{args.ingest_repeat}")
                encodes.append(run_child(f"{side}-encode", env, source=source, glob=glob)["seconds"])
            seconds = median([r["seconds"] for r in runs])
            results[f"ingest_{label}_{side}"] = {
                "seconds": seconds,
                "chunks": runs[0]["chunks"],
                "chunks_per_s": runs[0]["chunks"] / seconds,
                "mb_per_s": size / 1e6 / seconds,
                "peak_rss_mb": max(r["rss_mb"] for r in runs),
                "encode_seconds": median(encodes),
            }

    say("re-ingest, nothing changed / one file changed (project)")
    data = work / "project-all-0"
    nochange = [
        run_child("project-ingest", env, source=source, glob=ALL_GLOB, data=data)["seconds"]
        for _ in range(args.repeat)
    ]
    results["reingest_nochange_project"] = {"seconds": median(nochange)}
    edited = work / "edited.zip"
    _copy_with_one_edit(source, edited)
    changed = []
    for i in range(args.repeat):
        target = source if i % 2 else str(edited)
        changed.append(run_child("project-ingest", env, source=target, glob=ALL_GLOB, data=data)["seconds"])
    results["reingest_onechange_project"] = {"seconds": median(changed)}
    results["reingest_seed"] = {
        "seconds": results["ingest_all_seed"]["seconds"],
        "note": "the seed re-embeds everything on every run",
    }

    say("cold start: ask.py --retrieve-only, whole process")
    env_index = {**env, "RAG_DATA_DIR": str(data)}
    ask = [sys.executable, str(SCRIPTS / "ask.py"), "--retrieve-only", QUESTION]
    timed(ask, env_index)
    results["cold_retrieve_project"] = {"seconds": median([timed(ask, env_index) for _ in range(args.repeat)])}
    seed = [sys.executable, "-m", "evaluation.seed_pipeline", "search", "--db", str(work / "seed-all-0"), QUESTION]
    results["cold_retrieve_seed"] = {"seconds": median([timed(seed, env) for _ in range(args.repeat)])}

    say("cold start: ask.py to the first answer token (local OpenAI-compatible server)")
    results["first_token_project"] = {"seconds": _first_token(env_index, args.repeat)}

    say("warm retrieval latency")
    for mode in args.modes:
        lat = run_child("project-search", env, source=source, data=data, mode=mode, queries=args.queries)
        results[f"latency_{mode}_project"] = latency(lat["latencies_ms"])
    lat = run_child("seed-search", env, source=source, data=work / "seed-all-0", queries=args.queries)
    results["latency_seed"] = latency(lat["latencies_ms"])
    say("serving: 50 concurrent requests against scripts/serve.py over the all-docs index")
    served = work / "serving.json"
    subprocess.run(
        [sys.executable, str(SCRIPTS / "benchmark_serving.py"), "--data-dir", str(data), "--json", str(served)],
        env=env, check=False, stdout=subprocess.DEVNULL,
    )
    results["serving"] = json.loads(served.read_text()) if served.is_file() else {}
    return results


def _copy_with_one_edit(source: str, target: Path) -> None:
    import zipfile

    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "en/faq/performance_faq.md":
                data += b"\n\n#### Is this a benchmark edit?\n\nYes: one file changed between two ingests.\n"
            dst.writestr(info, data)


def _first_token(env: dict[str, str], repeat: int) -> float:
    sys.path.insert(0, str(REPO))
    from tests.support.openai_server import FakeDeepSeek

    with FakeDeepSeek() as server:
        env = {**env, "DEEPSEEK_BASE_URL": server.url, "DEEPSEEK_API_KEY": server.api_key or "sk-bench"}
        cmd = [sys.executable, str(SCRIPTS / "ask.py"), QUESTION]
        return median([timed(cmd, env, first_output=True) for _ in range(repeat)])


def table(r: dict[str, Any]) -> str:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "—"

    rows = [("figure", "project", "seed-style", "project / seed", "target", "holds")]
    for label in ("faq", "all"):
        p, s = r[f"ingest_{label}_project"], r[f"ingest_{label}_seed"]
        rows += [
            (
                f"ingest {label}: seconds",
                f"{p['seconds']:.1f}",
                f"{s['seconds']:.1f}",
                ratio(p["seconds"], s["seconds"]),
                "",
                "",
            ),
            (f"ingest {label}: chunks", str(p["chunks"]), str(s["chunks"]), ratio(p["chunks"], s["chunks"]), "", ""),
            (
                f"ingest {label}: chunks/s",
                f"{p['chunks_per_s']:.1f}",
                f"{s['chunks_per_s']:.1f}",
                ratio(p["chunks_per_s"], s["chunks_per_s"]),
                "",
                "",
            ),
            (
                f"ingest {label}: source MB/s",
                f"{p['mb_per_s']:.3f}",
                f"{s['mb_per_s']:.3f}",
                ratio(p["mb_per_s"], s["mb_per_s"]),
                ">= seed" if label == "all" else "",
                _ok(p["mb_per_s"] >= s["mb_per_s"]) if label == "all" else "",
            ),
            (
                f"ingest {label}: model-only encode s",
                f"{p['encode_seconds']:.1f}",
                f"{s['encode_seconds']:.1f}",
                ratio(p["encode_seconds"], s["encode_seconds"]),
                "",
                "",
            ),
            (
                f"ingest {label}: wall / encode",
                f"{p['seconds'] / p['encode_seconds']:.2f}",
                f"{s['seconds'] / s['encode_seconds']:.2f}",
                "",
                "<= 1.25" if label == "all" else "",
                _ok(p["seconds"] <= 1.25 * p["encode_seconds"]) if label == "all" else "",
            ),
            (
                f"ingest {label}: peak RSS MB",
                f"{p['peak_rss_mb']:.0f}",
                f"{s['peak_rss_mb']:.0f}",
                ratio(p["peak_rss_mb"], s["peak_rss_mb"]),
                "< 1500" if label == "all" else "",
                _ok(p["peak_rss_mb"] < 1500) if label == "all" else "",
            ),
        ]
    seed_re = r["reingest_seed"]["seconds"]
    rows += [
        (
            "re-ingest all, nothing changed: s",
            f"{r['reingest_nochange_project']['seconds']:.2f}",
            f"{seed_re:.1f}",
            ratio(r["reingest_nochange_project"]["seconds"], seed_re),
            "< 3",
            _ok(r["reingest_nochange_project"]["seconds"] < 3),
        ),
        (
            "re-ingest all, one file changed: s",
            f"{r['reingest_onechange_project']['seconds']:.2f}",
            f"{seed_re:.1f}",
            ratio(r["reingest_onechange_project"]["seconds"], seed_re),
            "",
            "",
        ),
        (
            "ask.py --retrieve-only, whole process: s",
            f"{r['cold_retrieve_project']['seconds']:.2f}",
            f"{r['cold_retrieve_seed']['seconds']:.2f}",
            ratio(r["cold_retrieve_project"]["seconds"], r["cold_retrieve_seed"]["seconds"]),
            "< 2.5",
            _ok(r["cold_retrieve_project"]["seconds"] < 2.5),
        ),
        ("ask.py start to first answer token: s", f"{r['first_token_project']['seconds']:.2f}", "—", "—", "", ""),
    ]
    seed_lat = r["latency_seed"]
    for key in sorted(k for k in r if k.startswith("latency_") and k.endswith("_project")):
        mode = key.split("_")[1]
        lat = r[key]
        rows += [
            (
                f"warm retrieval p50 ms ({mode})",
                f"{lat['p50_ms']:.1f}",
                f"{seed_lat['p50_ms']:.1f}",
                ratio(lat["p50_ms"], seed_lat["p50_ms"]),
                "<= 20",
                _ok(lat["p50_ms"] <= 20),
            ),
            (
                f"warm retrieval p95 ms ({mode})",
                f"{lat['p95_ms']:.1f}",
                f"{seed_lat['p95_ms']:.1f}",
                ratio(lat["p95_ms"], seed_lat["p95_ms"]),
                "",
                "",
            ),
        ]
    for kind, served in r.get("serving", {}).items():
        target = kind.startswith("retrieve")
        rows.append((
            f"serving {kind}, 50 at once: requests/s (p50 / p95 ms; failed)",
            f"{served['requests_per_s']:.1f} ({served['p50_ms']:.0f} / {served['p95_ms']:.0f}; {served['failed']})",
            "—", "—", ">= 50, none failed" if target else "none failed",
            _ok((served["requests_per_s"] >= 50 or not target) and served["failed"] == 0),
        ))
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _ok(flag: bool) -> str:
    return "yes" if flag else "NO"


def main(argv: list[str] | None = None) -> int:
    from config.settings import MODES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(DEFAULT_ZIP), help="the Milvus docs zip (default: ../shared/data/...)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the quick measurements (median)")
    parser.add_argument("--ingest-repeat", type=int, default=2, help="repetitions of each full ingest and encode")
    parser.add_argument("--queries", type=int, default=100, help="queries for the latency measurement")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="retrieval modes to time")
    parser.add_argument("--out", type=Path, default=REPO / "reports", help="folder for benchmark.json / .md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for hidden in ("glob", "data", "mode"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.queries = int(args.queries)
        print(json.dumps(child(args.child, args)))
        return 0
    if not Path(args.source).is_file():
        print(f"error: {args.source} not found — pass --source with the Milvus docs zip", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = benchmark(args)
    results["benchmark_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(results, indent=2))
    markdown = table(results)
    (args.out / "benchmark.md").write_text(markdown + "\n")
    print(markdown)
    print(
        f"\n{results['benchmark_seconds']:.0f} s; wrote {args.out / 'benchmark.json'} and {args.out / 'benchmark.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
