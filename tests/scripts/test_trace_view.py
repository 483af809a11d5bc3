"""`python scripts/trace_view.py FILE` as a user runs it on a trace file the chain's JsonlTracer wrote."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chains import JsonlTracer, build_rag_chain
from config.settings import Settings
from tests.chains.conftest import DOCS, KeywordRetriever
from tests.support.openai_server import FakeDeepSeek

TRACE_VIEW = Path(__file__).resolve().parents[2] / "scripts" / "trace_view.py"
FIRST = "Where does Milvus store data?"
SECOND = "What affects recall?"
TREE_LINE = re.compile(r"^( *)(\S+)  \[(\w+)\]  (\d+ ms)")


def view(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TRACE_VIEW), *args], capture_output=True, text=True, timeout=60)


def tree(stdout: str) -> list[tuple[int, str, str]]:
    """(depth, name, run type) of each tree line."""
    return [
        (len(m.group(1)) // 2, m.group(2), m.group(3))
        for m in map(TREE_LINE.match, stdout.splitlines())
        if m is not None
    ]


@pytest.fixture
def trace_file(tmp_path: Path, openai_server: FakeDeepSeek) -> Path:
    """Two traces: a good answer, then one whose model call failed."""
    settings = Settings(
        deepseek_api_key=openai_server.api_key, deepseek_base_url=openai_server.url, deepseek_max_retries=0
    )
    rag = build_rag_chain(KeywordRetriever(docs=DOCS), settings=settings)
    path = tmp_path / "trace.jsonl"
    rag.invoke({"question": FIRST}, config={"callbacks": [JsonlTracer(path)]})
    openai_server.fail(500)
    with pytest.raises(Exception, match="500"):
        rag.invoke({"question": SECOND}, config={"callbacks": [JsonlTracer(path)]})
    return path


def test_shows_the_latest_trace_as_a_tree_with_durations(trace_file: Path) -> None:
    result = view(str(trace_file))
    assert result.returncode == 0, result.stderr
    assert f"question: {SECOND}" in result.stdout and FIRST not in result.stdout
    rows = tree(result.stdout)
    depth = {name: d for d, name, _ in rows}
    assert rows[0][:2] == (0, "rag")
    assert {"retrieve", "format_context", "generate"} <= set(depth) and min(depth[s] for s in depth if s != "rag") > 0
    assert depth["KeywordRetriever"] == depth["retrieve"] + 1 and depth["ChatOpenAI"] == depth["generate"] + 1
    llm_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("ChatOpenAI"))
    assert "ERROR: " in llm_line and "500" in llm_line and "Traceback" not in result.stdout
    sources = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("[1] ")]
    assert sources == ["[1] en/faq/operational_faq.md — Operational FAQ > What affects recall? (score 0.500)"]


def test_all_shows_every_trace_oldest_first(trace_file: Path) -> None:
    result = view(str(trace_file), "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.index(f"question: {FIRST}") < result.stdout.index(f"question: {SECOND}")
    assert "answer: According to the documentation" in result.stdout
    assert [name for _, name, _ in tree(result.stdout)].count("rag") == 2


def test_compact_hides_langchain_wiring(trace_file: Path) -> None:
    result = view(str(trace_file), "--compact")
    names = [name for _, name, _ in tree(result.stdout)]
    wiring = ("RunnableSequence", "RunnableAssign", "RunnableParallel", "RunnableLambda")
    assert not any(name.startswith(wiring) for name in names)
    assert {"rag", "retrieve", "KeywordRetriever", "format_context", "generate", "ChatOpenAI"} <= set(names)


def test_a_damaged_line_is_skipped_with_a_warning(trace_file: Path) -> None:
    with trace_file.open("a", encoding="utf-8") as file:
        file.write('{"id": "cut short\n')
    result = view(str(trace_file))
    assert result.returncode == 0
    assert f"question: {SECOND}" in result.stdout
    assert result.stderr.strip().startswith("warning: skipped 1 line(s)")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no trace file at"),
        ("", "is empty: no traces yet"),
        ("not json at all\n", "is not a trace file: line 1"),
        ('{"question": "a JSON line, but not a run"}\n', "is not a trace file: line 1"),
        (b"\xff\xfe\x00binary", "not UTF-8"),
        ("folder", "is a folder"),
    ],
)
def test_bad_files_get_one_line_naming_the_problem_and_the_fix(tmp_path: Path, content, expected) -> None:
    path = tmp_path / "trace.jsonl"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = view(str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected in line and str(path) in line and " — " in line
