"""Every script in examples/ runs as a user runs it: a real FAQ index, the real OpenAI client, a fake DeepSeek
over HTTP. The assertions are on what each example prints and on what reached the model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.langsmith_server import FakeLangSmith
from tests.support.openai_server import FakeDeepSeek

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUESTION = "How is data stored in milvus?"
TOP_SOURCE = "en/faq/product_faq.md — Product FAQ > Where does Milvus store data?"


@pytest.fixture
def env(monkeypatch, faq_index: Path, openai_server: FakeDeepSeek) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(faq_index))
    monkeypatch.setenv("RAG_MODE", "dense")
    monkeypatch.setenv("DEEPSEEK_BASE_URL", openai_server.url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", openai_server.api_key)
    monkeypatch.setenv("DEEPSEEK_MAX_RETRIES", "0")


def example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args], capture_output=True, text=True, timeout=120
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warnings, no noise
    return result.stdout


def test_every_example_is_tested() -> None:
    tested = {"pipeline", "agent_tool", "chat_history", "swap_parts"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_pipeline_wraps_the_chain_between_its_own_steps(env, openai_server: FakeDeepSeek) -> None:
    out = ok(example("pipeline", f"  {QUESTION}  ", "What is the maximum vector dimension?"))
    first, _, second = out.partition("\n---\n")
    assert first.startswith(f"## {QUESTION}\n\nAccording to the documentation") and "[1]" in first
    assert "**Sources**\n\n1. `en/faq/product_faq.md` — Product FAQ > Where does Milvus store data?" in first
    assert second.strip().startswith("## What is the maximum vector dimension?")
    questions = sorted(r.text("user") for r in openai_server.chat_requests())
    assert len(questions) == 2 and any(f"<question>\n{QUESTION}\n</question>" in q for q in questions)


def test_an_agent_calls_the_chain_as_a_tool(env, openai_server: FakeDeepSeek) -> None:
    out = ok(example("agent_tool", QUESTION))
    assert f"tool call: milvus_docs({{'question': '{QUESTION}'}})" in out
    tool_result = out.partition("tool result:\n")[2].partition("\nanswer: ")[0]
    assert "[1]" in tool_result and f"[1] {TOP_SOURCE}" in tool_result
    assert "answer: According to milvus_docs: According to the documentation" in out
    requests = openai_server.chat_requests()
    offered = [bool(r.body.get("tools")) for r in requests]
    assert offered == [True, False, True]  # the agent, the chain inside the tool, the agent with the result
    assert requests[2].messages[-1]["role"] == "tool" and TOP_SOURCE in requests[2].messages[-1]["content"]


def test_history_makes_the_follow_up_standalone(env, openai_server: FakeDeepSeek) -> None:
    out = ok(example("chat_history", QUESTION, "And where is the metadata kept?"))
    assert out.count("Q: ") == 2 and out.count("A: According to the documentation") == 2
    assert "session 'demo' holds 4 messages" in out
    requests = openai_server.chat_requests()
    assert [r.is_rewrite for r in requests] == [False, True, False]
    assert QUESTION in requests[1].text("user") and "And where is the metadata kept?" in requests[1].text("user")
    assert f"Regarding '{QUESTION}': And where is the metadata kept?" in requests[2].text("user")


def test_swapped_model_and_retriever_answer_from_the_docs_and_the_notes(env, openai_server: FakeDeepSeek) -> None:
    out = ok(example("swap_parts", "Where does Milvus keep its metadata?"))
    assert out.startswith("chat model: ChatDeepSeek (deepseek-chat)\nanswer: According to the documentation")
    sources = [line.strip() for line in out.splitlines() if line.startswith("  [")]
    assert any("notes/ops.md — Team notes" in s for s in sources)
    assert any("en/faq/" in s for s in sources)
    (request,) = openai_server.chat_requests()
    assert "Our team runs Milvus with etcd" in request.text("user")


def test_with_langsmith_variables_the_app_and_the_chain_are_traced(env, monkeypatch) -> None:
    """The standard variables switch tracing on inside another app too; the chain nests under the app's run."""
    with FakeLangSmith() as langsmith:
        monkeypatch.setenv("LANGSMITH_TRACING", "true")
        monkeypatch.setenv("LANGSMITH_ENDPOINT", langsmith.url)
        monkeypatch.setenv("LANGSMITH_API_KEY", langsmith.api_key)
        ok(example("pipeline", QUESTION))
        runs = langsmith.runs()
        payload = langsmith.payload_bytes()
    named = {run["name"]: run for run in runs.values()}
    root = named["markdown_answer"]
    assert root.get("parent_run_id") is None and root["inputs"] == {"input": QUESTION}
    assert str(named["rag"]["parent_run_id"]) == str(root["id"])
    assert {"retrieve", "format_context", "generate", "ChatOpenAI"} <= set(named)
    assert langsmith.api_key.encode() not in payload


@pytest.mark.parametrize("name", ["pipeline", "agent_tool", "chat_history", "swap_parts"])
def test_without_a_key_each_example_says_how_to_set_it(env, monkeypatch, name: str) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY")
    result = example(name)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: DEEPSEEK_API_KEY is not set") and "platform.deepseek.com" in line
