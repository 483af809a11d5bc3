"""`ask.py` while the server holds the Milvus Lite index: it asks the server instead of failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.server.conftest import GOLD_HEADING, QUESTION, TOKEN, RunningServer

ASK = [sys.executable, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "ask.py")]


@pytest.fixture
def env(monkeypatch, server: RunningServer, deepseek) -> dict[str, str]:
    monkeypatch.setenv("RAG_DATA_DIR", str(server.data_dir))
    monkeypatch.setenv("DEEPSEEK_API_KEY", deepseek.api_key)
    monkeypatch.setenv("DEEPSEEK_BASE_URL", deepseek.url)
    monkeypatch.setenv("RAG_SERVER_TOKEN", TOKEN)
    return dict(os.environ)


def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*ASK, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_five_ask_processes_at_once_all_answer_through_the_server(env, server, deepseek):
    runs = [
        start(QUESTION, env=env),
        start(QUESTION, "--no-stream", env=env),
        start(QUESTION, "--json", "--k", "2", env=env),
        start(QUESTION, "--retrieve-only", env=env),
        start(QUESTION, "--retrieve-only", "--json", "--filter", 'source like "en/faq/product%"', env=env),
    ]
    results = [(p.communicate(timeout=180), p.returncode) for p in runs]
    for (_, err), code in results:
        assert code == 0, err
        assert "in use by another process" not in err
    (streamed, _), (whole, _), (as_json, _), (passages, _), (filtered, _) = [r[0] for r in results]
    for text in (streamed, whole):
        answer, _, sources = text.partition("\nSources:")
        assert "[1]" in answer and f"[1] en/faq/product_faq.md — {GOLD_HEADING}" in sources
    payload = json.loads(as_json)
    assert "[1]" in payload["answer"] and len(payload["sources"]) == 2 and payload["question"] == QUESTION
    assert passages.startswith(f"[1] en/faq/product_faq.md — {GOLD_HEADING}")
    assert {s["source"] for s in json.loads(filtered)["sources"]} == {"en/faq/product_faq.md"}
    assert len([r for r in deepseek.chat_requests() if "<context>" in r.text("user")]) == 3


def test_interactive_follow_up_goes_through_the_server(env, deepseek):
    result = subprocess.run(
        [*ASK], input=f"{QUESTION}\nand where is the metadata kept?\nexit\n", env=env, capture_output=True,
        text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Sources:") == 2
    rewrites = [r for r in deepseek.chat_requests() if "<context>" not in r.text("user")]
    assert any(QUESTION in r.text("user") and "metadata" in r.text("user") for r in rewrites)


def test_without_the_servers_token_one_line_says_so(env, server):
    env = {k: v for k, v in env.items() if k != "RAG_SERVER_TOKEN"}
    result = subprocess.run([*ASK, QUESTION], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 2
    url = json.loads((server.data_dir / "server.json").read_text())["url"]
    assert result.stderr.strip().splitlines() == [
        f"error: the server at {url} (which holds the index) needs its token — "
        "set RAG_SERVER_TOKEN to the token the server was started with"
    ]


def test_deepseek_errors_come_back_as_the_same_line(env, deepseek):
    deepseek.fail(401)
    result = subprocess.run([*ASK, QUESTION], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: the DeepSeek API") and "rejected the API key" in line
