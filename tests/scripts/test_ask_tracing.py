"""`ask.py` traced as a user sets it up: LangSmith through its standard environment variables (a local capture
server stands in for LangSmith and sees exactly what the real client posts), and `--trace FILE` + trace_view.py
offline. A real FAQ index, the real OpenAI client, a fake DeepSeek over HTTP."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.langsmith_server import FakeLangSmith
from tests.support.openai_server import FakeDeepSeek

REPO = Path(__file__).resolve().parents[2]
ASK = REPO / "scripts" / "ask.py"
TRACE_VIEW = REPO / "scripts" / "trace_view.py"
QUESTION = "How is data stored in milvus?"
MILVUS_TOKEN = "root:milvus-token-5be1c9"
PROJECT = "milvus-rag-ci"

Runs = dict[str, dict[str, Any]]


@pytest.fixture
def langsmith() -> Iterator[FakeLangSmith]:
    with FakeLangSmith() as server:
        yield server


@pytest.fixture
def env(monkeypatch, faq_index, openai_server: FakeDeepSeek, langsmith: FakeLangSmith) -> None:
    """What a user exports: DeepSeek, a Milvus token (ignored by Milvus Lite, still a secret), LangSmith."""
    monkeypatch.setenv("RAG_DATA_DIR", str(faq_index))
    monkeypatch.setenv("DEEPSEEK_BASE_URL", openai_server.url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", openai_server.api_key)
    monkeypatch.setenv("DEEPSEEK_MAX_RETRIES", "0")
    monkeypatch.setenv("MILVUS_TOKEN", MILVUS_TOKEN)
    monkeypatch.setenv("RAG_MODE", "dense")
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", langsmith.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", langsmith.api_key)
    monkeypatch.setenv("LANGSMITH_PROJECT", PROJECT)


def run_script(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)


def named(runs: Runs, name: str) -> dict[str, Any]:
    (run,) = [r for r in runs.values() if r["name"] == name]
    return run


def lineage(runs: Runs, run: dict[str, Any]) -> list[str]:
    """Names from the run's parent up to the root."""
    names = []
    while run.get("parent_run_id"):
        run = runs[str(run["parent_run_id"])]
        names.append(run["name"])
    return names


def assert_no_secret(langsmith: FakeLangSmith, *secrets: str) -> None:
    payload = langsmith.payload_bytes()
    assert payload  # something was sent, so the check means something
    for secret in (*secrets, MILVUS_TOKEN, langsmith.api_key):
        assert secret.encode() not in payload


def test_one_ask_posts_the_run_tree_to_langsmith(env, langsmith: FakeLangSmith, openai_server: FakeDeepSeek):
    result = run_script(ASK, QUESTION)
    assert result.returncode == 0, result.stderr
    answer = result.stdout.partition("\nSources:")[0].strip()

    runs = langsmith.runs()  # no waiting: ask.py flushed before it exited
    root = named(runs, "rag")
    assert root.get("parent_run_id") is None
    assert {str(r["trace_id"]) for r in runs.values()} == {str(root["id"])}
    assert all(str(r["parent_run_id"]) in runs for r in runs.values() if r.get("parent_run_id"))
    for step in ("retrieve", "format_context", "generate"):
        assert lineage(runs, named(runs, step))[-1] == "rag"
    retriever = named(runs, "MilvusRetriever")
    assert retriever["run_type"] == "retriever" and lineage(runs, retriever)[0] == "retrieve"
    assert retriever["outputs"]["documents"][0]["metadata"]["source"] == "en/faq/product_faq.md"
    llm = named(runs, "ChatOpenAI")
    assert llm["run_type"] == "llm" and lineage(runs, llm)[0] == "generate"

    assert root["inputs"]["question"] == QUESTION
    assert root["outputs"]["answer"] == answer
    assert all(r.get("end_time") and not r.get("error") for r in runs.values())
    assert {r["session_name"] for r in runs.values()} == {PROJECT}
    metadata = root["extra"]["metadata"]
    assert {k: metadata[k] for k in ("collection", "k", "retrieval_mode", "llm_model")} == {
        "collection": "my_rag_collection",
        "k": 3,
        "retrieval_mode": "dense",
        "llm_model": "deepseek-chat",
    }
    assert metadata["embedding_model"].startswith("all-MiniLM-L6-v2")
    assert {"milvus-deepseek-rag", "retrieval:dense"} <= set(root["tags"])
    assert {r.headers["x-api-key"] for r in langsmith.ingest_requests()} == {langsmith.api_key}
    assert_no_secret(langsmith, openai_server.api_key)


def test_a_rejected_key_is_recorded_as_errors_without_the_key(env, monkeypatch, langsmith: FakeLangSmith):
    """DeepSeek answers 401 for a wrong key: the failed runs carry the error, the payloads never the key."""
    wrong = "sk-wrong-0123456789abcdef0123"
    monkeypatch.setenv("DEEPSEEK_API_KEY", wrong)
    result = run_script(ASK, QUESTION)
    assert result.returncode == 1 and "rejected the API key" in result.stderr

    runs = langsmith.runs()
    for name in ("rag", "generate", "ChatOpenAI"):
        assert "401" in named(runs, name)["error"]
    assert not named(runs, "retrieve").get("error")
    assert named(runs, "rag")["inputs"]["question"] == QUESTION
    assert_no_secret(langsmith, wrong)
    payload = langsmith.decoded_bytes()
    assert wrong[-4:].encode() not in payload  # DeepSeek's reply quotes "****0123": redacted before upload
    assert b"Your api key: [redacted] is invalid" in payload


def test_trace_file_holds_the_same_tree_and_trace_view_prints_it(
    env, tmp_path: Path, langsmith: FakeLangSmith, openai_server: FakeDeepSeek
):
    trace = tmp_path / "trace.jsonl"
    result = run_script(ASK, "--trace", str(trace), QUESTION)
    assert result.returncode == 0, result.stderr

    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    posted = langsmith.runs()
    assert {(r["id"], r["parent_run_id"], r["name"]) for r in lines} == {
        (str(r["id"]), str(r["parent_run_id"]) if r.get("parent_run_id") else None, r["name"]) for r in posted.values()
    }
    text = trace.read_text(encoding="utf-8")
    assert openai_server.api_key not in text and MILVUS_TOKEN not in text and langsmith.api_key not in text

    view = run_script(TRACE_VIEW, str(trace))
    assert view.returncode == 0, view.stderr
    out = view.stdout.splitlines()
    assert f"question: {QUESTION}" in out
    depth = {}
    for line in out:
        match = re.match(r"^( *)(\S+)  \[(\w+)\]  (\d+) ms", line)
        if match:
            depth.setdefault(match.group(2), len(match.group(1)) // 2)
    assert depth["rag"] == 0 and all(depth[step] > 0 for step in ("retrieve", "format_context", "generate"))
    assert depth["MilvusRetriever"] == depth["retrieve"] + 1
    assert any(re.search(r"\[1\] en/faq/product_faq\.md — Product FAQ > .+ \(score 0\.\d{3}\)", line) for line in out)
