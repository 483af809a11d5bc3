"""`python scripts/ask.py` as a user runs it: a real FAQ index, the real OpenAI client, a fake DeepSeek over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]
ASK = REPO / "scripts" / "ask.py"
QUESTION = "How is data stored in milvus?"
GOLD_HEADING = "Product FAQ > Where does Milvus store data?"


@pytest.fixture
def env(monkeypatch, faq_index, openai_server) -> dict[str, str]:
    monkeypatch.setenv("RAG_DATA_DIR", str(faq_index))
    monkeypatch.setenv("DEEPSEEK_BASE_URL", openai_server.url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", openai_server.api_key)
    monkeypatch.setenv("DEEPSEEK_MAX_RETRIES", "1")
    return {}


def ask(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ASK), *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def no_secret(result: subprocess.CompletedProcess[str], secret: str) -> None:
    assert secret not in result.stdout and secret not in result.stderr
    assert secret[-4:] not in result.stderr


def test_answers_streamed_cited_and_listed(env, openai_server):
    result = ask(QUESTION)
    assert result.returncode == 0, result.stderr
    answer, _, sources = result.stdout.partition("\nSources:")
    assert "[1]" in answer
    assert f"[1] en/faq/product_faq.md — {GOLD_HEADING}" in sources
    request = openai_server.chat_requests()[-1]
    assert request.body["stream"] is True
    assert "Milvus deals with two types of data" in request.text("user")
    assert QUESTION in request.text("user")
    assert openai_server.streams_finished == 1
    no_secret(result, openai_server.api_key)


def test_json_prints_one_object(env):
    result = ask(QUESTION, "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["answer"] and payload["sources"][0]["heading"] == GOLD_HEADING
    assert {"n", "source", "heading", "score", "text"} <= set(payload["sources"][0])


def test_show_context_prints_texts_with_scores(env):
    result = ask(QUESTION, "--show-context", "--no-stream", "--k", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"search query: {QUESTION}\n")
    start = result.stdout.index("[")
    context = json.loads(result.stdout[start : result.stdout.index("\n]") + 2])
    assert len(context) == 2 and isinstance(context[0][1], float)
    assert "Milvus deals with two types of data" in context[0][0]


def test_retrieve_only_never_calls_the_model(env, openai_server):
    result = ask(QUESTION, "--retrieve-only")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"[1] en/faq/product_faq.md — {GOLD_HEADING}")
    assert openai_server.requests == []


def test_retrieve_only_with_trace_records_the_retrieval(env, tmp_path):
    trace = tmp_path / "trace.jsonl"
    result = ask(QUESTION, "--retrieve-only", "--trace", str(trace))
    assert result.returncode == 0, result.stderr
    (run,) = [json.loads(line) for line in trace.read_text().splitlines()]
    assert (run["name"], run["run_type"], run["inputs"]) == ("retrieve", "retriever", {"query": QUESTION})
    assert run["outputs"]["documents"][0]["metadata"]["heading"] == GOLD_HEADING


def test_without_a_key_it_prints_passages_and_says_how_to_set_it(env, monkeypatch, openai_server):
    monkeypatch.delenv("DEEPSEEK_API_KEY")
    result = ask(QUESTION)
    assert result.returncode == 0
    assert GOLD_HEADING in result.stdout
    assert [line for line in result.stderr.splitlines() if "DEEPSEEK_API_KEY" in line] == result.stderr.splitlines()
    assert openai_server.requests == []


def test_interactive_follow_up_is_rewrited_before_retrieval(env, openai_server):
    result = ask(stdin=f"{QUESTION}\nand where is the metadata kept?\nexit\n")
    assert result.returncode == 0, result.stderr
    requests = openai_server.chat_requests()
    assert [r.is_rewrite for r in requests] == [False, True, False]
    assert "and where is the metadata kept?" in requests[1].text("user")
    assert result.stdout.count("Sources:") == 2


def test_first_run_builds_the_index(monkeypatch, openai_server, docs_zip, tmp_path):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.setenv("RAG_SOURCE", str(docs_zip))
    result = ask(QUESTION, "--retrieve-only")
    assert result.returncode == 0, result.stderr
    assert "No index yet" in result.stderr and "files: 4 read" in result.stderr
    assert GOLD_HEADING in result.stdout


def test_no_index_and_no_way_to_build_one(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.setenv("RAG_SOURCE", str(tmp_path / "missing.zip"))
    result = ask(QUESTION, "--retrieve-only")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no index yet, and it cannot be built") and "RAG_SOURCE" in last


@pytest.mark.parametrize(
    ("question", "expected"), [("   ", "the question is empty"), ("why? " * 500, "the limit is 2000")]
)
def test_bad_questions(env, question, expected, openai_server):
    result = ask(question)
    assert result.returncode == 2
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0]
    assert expected in result.stderr
    assert openai_server.requests == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "rejected the API key"),
        (402, "insufficient balance"),
        (400, "rejected the request"),
        (422, "rejected the request"),
        (429, "rate limiting after retries"),
        (500, "server error, even after retries"),
        (503, "overloaded, even after retries"),
    ],
)
def test_api_errors_are_one_line_without_secrets(env, openai_server, status, expected):
    openai_server.fail(status)
    result = ask(QUESTION)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    no_secret(result, openai_server.api_key)
    if status in (429, 500, 503):
        assert len(openai_server.chat_requests()) == 2  # DEEPSEEK_MAX_RETRIES=1: one retry


def test_timeout(env, openai_server, monkeypatch):
    monkeypatch.setenv("DEEPSEEK_TIMEOUT", "1")
    monkeypatch.setenv("DEEPSEEK_MAX_RETRIES", "0")
    openai_server.delay(5)
    result = ask(QUESTION)
    assert result.returncode == 1
    assert "did not answer in time" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}", "http://nonexistent.invalid"])
def test_unreachable_endpoint(env, monkeypatch, url):
    monkeypatch.setenv("DEEPSEEK_BASE_URL", url.format(port=free_port()))
    monkeypatch.setenv("DEEPSEEK_MAX_RETRIES", "0")
    result = ask(QUESTION)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and ("connection refused" in line or "cannot resolve" in line), line


def test_debug_shows_the_traceback(env, openai_server):
    openai_server.fail(401)
    result = ask(QUESTION, "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_index_held_by_another_process(env, faq_index):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pymilvus import MilvusClient; "
            f"MilvusClient(uri={str(faq_index / 'milvus.db')!r}); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = ask(QUESTION)
    finally:
        holder.kill()
        holder.wait(10)
    assert result.returncode == 1
    assert "in use by another process" in result.stderr.strip().splitlines()[-1]


# ---- bad input and other languages ------------------------------------------------------------------------------

PT_QUESTION = "Como os dados são armazenados no milvus?"


@pytest.mark.parametrize("k", ["0", "-1", "100000"])
def test_k_outside_1_to_50_is_one_line_and_exit_2(env, openai_server, k):
    result = ask(QUESTION, "--k", k)
    assert result.returncode == 2
    expected = f"error: --k must be a whole number from 1 to 50, got {k} — e.g. --k=5"
    assert result.stderr.strip().splitlines() == [expected]
    assert openai_server.chat_requests() == []


def test_a_portuguese_question_is_searched_in_english(env, openai_server):
    openai_server.answer_with(QUESTION, match=lambda r: r.is_rewrite)
    result = ask(PT_QUESTION, "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["search_query"] == QUESTION and payload["question"] == PT_QUESTION
    assert payload["sources"][0]["heading"] == GOLD_HEADING
    rewrite, answer = openai_server.chat_requests()
    assert rewrite.is_rewrite and "in Portuguese" in answer.text("system")


def test_interactive_in_portuguese_with_a_follow_up(env, openai_server):
    openai_server.answer_with(QUESTION, times=1, match=lambda r: r.is_rewrite)
    openai_server.answer_with("Where are the inserted data of Milvus kept?", match=lambda r: r.is_rewrite)
    result = ask(stdin=f"{PT_QUESTION}\nE os metadados?\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Sources:") == 2
    kinds = [r.is_rewrite for r in openai_server.chat_requests()]
    assert kinds == [True, False, True, False]  # one rewrite per question, the follow-up included
    assert "User: Como os dados" in openai_server.chat_requests()[2].text("user")


def test_without_a_key_a_foreign_question_gets_passages_and_one_note(env, monkeypatch):
    monkeypatch.delenv("DEEPSEEK_API_KEY")
    result = ask(PT_QUESTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[1] ")
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "Portuguese" in notes[0] and "DEEPSEEK_API_KEY" in notes[0]


def test_bytes_that_are_not_utf8_do_not_break_a_question_or_a_session(env, openai_server):
    argv = subprocess.run(
        [sys.executable, str(ASK), b"how is data stored in milvus? \xff\xfe", "--no-stream"],
        capture_output=True, timeout=120,
    )
    assert argv.returncode == 0, argv.stderr.decode(errors="replace")
    assert b"Sources:" in argv.stdout
    session = subprocess.run(
        [sys.executable, str(ASK)],
        input=f"{QUESTION}\n".encode() + b"caf\xe9 \xff milvus?\n" + b"What is the maximum vector dimension?\n",
        capture_output=True, timeout=120,
    )
    assert session.returncode == 0, session.stderr.decode(errors="replace")
    assert session.stdout.count(b"Sources:") == 3
    assert b"Traceback" not in session.stderr


# ---- several commands on one Milvus Lite index, no server ---------------------------------------------------------


def test_five_ask_started_together_all_answer(env, monkeypatch):
    """Each holds the index folder only while it searches, and waits its turn for it."""
    monkeypatch.delenv("DEEPSEEK_API_KEY")
    runs = [
        subprocess.Popen([sys.executable, str(ASK), "--retrieve-only", QUESTION], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(5)
    ]
    results = [(run.wait(timeout=180), run.stdout.read(), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    assert [code for code, _, _ in results] == [0] * 5, [err[-500:] for _, _, err in results]
    assert all(out.startswith(f"[1] en/faq/product_faq.md — {GOLD_HEADING}") for _, out, _ in results)


def test_an_open_interactive_session_locks_out_neither_ask_nor_ingest(env, monkeypatch, docs_zip):
    monkeypatch.delenv("DEEPSEEK_API_KEY")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    session = subprocess.Popen([sys.executable, str(ASK)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        session.stdin.write(f"{QUESTION}\n")
        session.stdin.flush()
        assert session.stdout.readline().startswith("[1] ")  # the session has answered and is waiting
        other = ask("--retrieve-only", "What is the maximum vector dimension?")
        assert other.returncode == 0, other.stderr
        ingest = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "ingest.py"), "--source", str(docs_zip), "--no-progress"],
            capture_output=True, text=True, timeout=300,
        )
        assert ingest.returncode == 0, ingest.stderr
        assert "0 added" in ingest.stdout  # the index was there, whole, for the ingest to check
        session.stdin.write("Is there a windows build of milvus?\n")
        session.stdin.close()
        rest = session.stdout.read()
        assert session.wait(timeout=120) == 0
        assert "Windows" in rest
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
        session.stdout.close()
