"""Benchmark the server under many users: `scripts/serve.py` on a free port over an index, the local stand-in
for DeepSeek (tests/support/openai_server.py, in its own process), and rounds of concurrent requests.

    python scripts/benchmark_serving.py                       # builds a FAQ index in a temporary folder
    python scripts/benchmark_serving.py --data-dir PATH       # an existing index (RAG_DATA_DIR)

For each kind of request it prints p50 / p95 latency and requests per second over `--rounds` rounds of
`--concurrency` requests sent at once; every request must succeed (exit 1 otherwise). Kinds: retrieve-only
(`/api/ask` with `retrieve_only`: embedding + Milvus, no model), answers (`/api/ask`, the chain with the
stand-in model), streamed answers (time to the first token and to the end), and the OpenAI-compatible
endpoint. The stand-in answers at once, so answer figures measure the server, not DeepSeek.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from config.settings import MODES

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO.parent / "shared" / "data" / "milvus_docs_2.4.x_en.zip"
QUESTIONS = [
    "How is data stored in milvus?",
    "What is the maximum vector dimension?",
    "Can several Milvus clusters share one MinIO bucket?",
    "What affects recall?",
    "Does Milvus run on Windows?",
    "Why is my search slow?",
    "How do I choose an index type?",
    "What is the difference between FLAT and IVF_FLAT?",
]
TARGET_RETRIEVE_RPS = 50.0
FAKE = """
import sys, time
sys.path.insert(0, {repo!r})
from tests.support.openai_server import FakeDeepSeek
server = FakeDeepSeek(max_lifetime=3600).start()
print(server.url, server.api_key, flush=True)
sys.stdin.read()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="an existing index (default: build the FAQ into a temp folder)")
    parser.add_argument("--source", default=str(DEFAULT_ZIP), help="docs zip for the temporary FAQ index")
    parser.add_argument("--concurrency", type=int, default=50, help="requests sent at once (default 50)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per kind of request (default 4)")
    parser.add_argument("--threads", type=int, help="the server's RAG_SERVER_THREADS")
    parser.add_argument("--mode", choices=MODES, help="retrieval mode (default: RAG_MODE)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        data_dir = args.data_dir or build_index(work / "index", args.source)
        with fake_deepseek() as (url, key), serve(data_dir, work, url, key, args) as server_url:
            results = asyncio.run(measure(server_url, args.concurrency, args.rounds))
    print_table(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["failed"] == 0 for r in results.values()) else 1


def build_index(data_dir: Path, source: str) -> Path:
    sys.path.insert(0, str(REPO))
    from config.settings import get_settings
    from index.pipeline import run_ingest

    print(f"building a FAQ index from {source} ...", file=sys.stderr)
    run_ingest(get_settings(data_dir_override=data_dir), source=source, progress=False)
    return data_dir


class fake_deepseek:  # noqa: N801 - used as a context manager
    """The stand-in in its own process, so it does not share a GIL with the load generator."""

    def __enter__(self) -> tuple[str, str]:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FAKE.format(repo=str(REPO))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        url, key = self.proc.stdout.readline().split()
        return url, key

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


class serve:  # noqa: N801 - used as a context manager
    def __init__(self, data_dir: Path, work: Path, url: str, key: str, args: argparse.Namespace) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DEEPSEEK_", "RAG_SERVER_", "LANGSMITH_"))}
        env.update(RAG_DATA_DIR=str(data_dir), DEEPSEEK_BASE_URL=url, DEEPSEEK_API_KEY=key, PYTHONUNBUFFERED="1")
        if args.threads:
            env["RAG_SERVER_THREADS"] = str(args.threads)
        if args.mode:
            env["RAG_MODE"] = args.mode
        self.env, self.work = env, work

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "serve.py"), "--port", "0"],
            env=self.env, cwd=self.work, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "serving the Milvus docs on " in line:
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # keep the pipe drained
                return line.split("serving the Milvus docs on ", 1)[1].split()[0]
            print(line, end="", file=sys.stderr)
        raise SystemExit(f"the server exited with {self.proc.wait()} before serving")

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def measure(url: str, concurrency: int, rounds: int) -> dict[str, dict[str, Any]]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def retrieve(i: int) -> tuple[float, float | None]:
            body = {"question": QUESTIONS[i % len(QUESTIONS)], "retrieve_only": True}
            started = time.perf_counter()
            r = await client.post("/api/ask", json=body)
            ok = r.status_code == 200 and len(r.json()["sources"]) == 3
            return (time.perf_counter() - started, None) if ok else failure(r.status_code, r.text)

        async def answer(i: int) -> tuple[float, float | None]:
            started = time.perf_counter()
            r = await client.post("/api/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]})
            ok = r.status_code == 200 and "[1]" in r.json()["answer"]
            return (time.perf_counter() - started, None) if ok else failure(r.status_code, r.text)

        async def stream(i: int) -> tuple[float, float | None]:
            started = time.perf_counter()
            first = None
            body = {"question": QUESTIONS[i % len(QUESTIONS)], "stream": True}
            async with client.stream("POST", "/api/ask", json=body) as r:
                text = ""
                async for piece in r.aiter_text():
                    if first is None and "event: token" in piece:
                        first = time.perf_counter() - started
                    text += piece
            ok = r.status_code == 200 and "event: sources" in text
            return (time.perf_counter() - started, first) if ok else failure(r.status_code, text)

        async def chat(i: int) -> tuple[float, float | None]:
            body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]}
            started = time.perf_counter()
            r = await client.post("/v1/chat/completions", json=body)
            ok = r.status_code == 200 and r.json()["sources"]
            return (time.perf_counter() - started, None) if ok else failure(r.status_code, r.text)

        kinds: dict[str, Callable[[int], Awaitable[tuple[float, float | None]]]] = {
            "retrieve-only (/api/ask retrieve_only)": retrieve,
            "answers (/api/ask)": answer,
            "streamed answers (/api/ask stream)": stream,
            "OpenAI-compatible (/v1/chat/completions)": chat,
        }
        await asyncio.gather(*(retrieve(i) for i in range(10)))  # warm up: model, Milvus, connections
        await asyncio.gather(*(answer(i) for i in range(10)))
        return {name: await run_kind(fn, concurrency, rounds) for name, fn in kinds.items()}


class Failed(Exception):
    pass


def failure(status: int, text: str) -> tuple[float, float | None]:
    raise Failed(f"{status}: {text[-300:]!r}")


async def run_kind(fn: Callable[[int], Awaitable[tuple[float, float | None]]], n: int, rounds: int) -> dict[str, Any]:
    latencies: list[float] = []
    firsts: list[float] = []
    failed = 0
    reasons: list[str] = []
    wall = 0.0
    for r in range(rounds):
        started = time.perf_counter()
        results = await asyncio.gather(*(fn(r * n + i) for i in range(n)), return_exceptions=True)
        wall += time.perf_counter() - started
        for result in results:
            if isinstance(result, BaseException):
                failed += 1
                reasons.append(f"{type(result).__name__}: {result}")
                continue
            latencies.append(result[0])
            if result[1] is not None:
                firsts.append(result[1])
    figures: dict[str, Any] = {
        "requests": n * rounds,
        "failed": failed,
        "requests_per_s": (n * rounds - failed) / wall if wall else 0.0,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p95_ms": 1000 * percentile(latencies, 95),
    }
    if reasons:
        figures["failures"] = reasons[:5]
        print("failed:", *reasons[:5], sep="\n  ", file=sys.stderr)
    if firsts:
        figures["first_token_p50_ms"] = 1000 * percentile(firsts, 50)
        figures["first_token_p95_ms"] = 1000 * percentile(firsts, 95)
    return figures


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{args.concurrency} concurrent requests x {args.rounds} rounds, on {os.cpu_count()} cores\n")
    print("| requests | ok / sent | requests/s | p50 ms | p95 ms | first token p50 / p95 ms |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        first = f"{r['first_token_p50_ms']:.0f} / {r['first_token_p95_ms']:.0f}" if "first_token_p50_ms" in r else ""
        ok = r["requests"] - r["failed"]
        print(f"| {name} | {ok} / {r['requests']} | {r['requests_per_s']:.1f} | {r['p50_ms']:.0f} | "
              f"{r['p95_ms']:.0f} | {first} |")
    retrieve = next(iter(results.values()))
    holds = "holds" if retrieve["requests_per_s"] >= TARGET_RETRIEVE_RPS else "MISSED"
    print(f"\nretrieve-only target >= {TARGET_RETRIEVE_RPS:.0f} requests/s: {holds}")


if __name__ == "__main__":
    sys.exit(main())
