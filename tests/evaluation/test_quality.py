"""`python scripts/evaluate.py` as a user runs it, on the FAQ pages of the real docs zip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from config.errors import ConfigError
from evaluation.quality import is_hit, load_questions

REPO = Path(__file__).resolve().parents[2]
EVALUATE = REPO / "scripts" / "evaluate.py"

QUESTIONS = [
    {"question": "How is data stored in milvus?", "gold": "Milvus deals with two types of data"},
    {"question": "is there a windows build of milvus", "gold": "You can install Milvus on Windows"},
    {"question": "what drives cpu load during queries", "gold": "a question that no chunk answers, verbatim"},
]


def evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EVALUATE), *args], capture_output=True, text=True, timeout=600
    )


def test_report_compares_baseline_dense_and_hybrid(tmp_path: Path, docs_zip: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / "report"
    result = evaluate(
        "--questions", str(questions), "--source", str(docs_zip), "--glob", "en/faq/*.md",
        "--out", str(out), "--repeat", "1", "--no-progress", "--data-dir", str(tmp_path / "eval-index"),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "hit@1" in line)
    assert header.split() == ["hit@1", "hit@3", "hit@5", "mrr@5", "p50_ms", "p95_ms"]
    for label in ('seed ("# " split, dense)', "dense", "hybrid RRF 2 dense + 1 BM25"):
        row = next(line for line in lines if line.startswith(label))
        hit1, hit3, hit5 = (float(x) for x in row[len(label):].split()[:3])
        assert hit1 <= hit3 <= hit5 <= 0.67  # printed to 2 places; the third gold span is nowhere

    report = json.loads((out / "evaluation.json").read_text())
    assert list(report["systems"]) == ["baseline", "dense", "hybrid"]
    assert report["systems"]["hybrid"]["served_mode"] == "hybrid"
    assert report["systems"]["hybrid"]["label"] == "hybrid RRF 2 dense + 1 BM25"
    assert report["systems"]["dense"]["hit@3"] >= 2 / 3 - 1e-9
    assert [q[name] for q in report["per_question"] for name in ("dense", "hybrid")][-2:] == [None, None]
    assert report["systems"]["baseline"]["chunks"] > report["index"]["chunks"] > 20
    assert (out / "evaluation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_question_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "gold": "g"}\nnot json\n')
    result = evaluate("--questions", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "line 2: not JSON" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_hit_rule_ignores_markup_and_wrapping_but_not_case() -> None:
    assert is_hit("run `docker ps` to observe", "If so, run docker ps\nto  observe the containers")
    assert is_hit("see [Install Milvus](install.md)", "see Install Milvus(install.md)")
    assert not is_hit("Milvus deals with", "milvus deals with")


def test_missing_question_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--questions"):
        load_questions(tmp_path / "absent.jsonl")


TRANSLATED = [
    {"question": "Como os dados são armazenados no milvus?", "english": "How is data stored in milvus?",
     "gold": "Milvus deals with two types of data"},
    {"question": "existe uma versão do milvus para windows", "english": "is there a windows build of milvus",
     "gold": "You can install Milvus on Windows"},
]


def test_oracle_rewrite_searches_the_english_version(tmp_path: Path, docs_zip: Path) -> None:
    """--rewrite oracle measures what a perfect translation would find; --rewrite none, the question as asked."""
    questions = tmp_path / "pt.jsonl"
    questions.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in TRANSLATED))
    common = ["--questions", str(questions), "--source", str(docs_zip), "--glob", "en/faq/*.md", "--modes", "dense",
              "--repeat", "1", "--no-progress", "--data-dir", str(tmp_path / "eval-index")]
    oracle = evaluate(*common, "--rewrite", "oracle", "--out", str(tmp_path / "oracle"))
    assert oracle.returncode == 0, oracle.stderr
    report = json.loads((tmp_path / "oracle" / "evaluation.json").read_text())
    assert report["systems"]["dense"]["hit@3"] == 1.0  # the English versions find both passages

    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"question": "q", "gold": "g"}\n')
    refused = evaluate("--questions", str(plain), "--rewrite", "oracle", "--out", str(tmp_path / "out"))
    assert refused.returncode == 2 and "'english' field" in refused.stderr


def test_the_seed_chunks_the_files_the_project_would_pick(tmp_path: Path) -> None:
    """Benchmark and evaluation share one seed: `*` stays in its folder, binary files are left out, '# ' splits."""
    from evaluation.seed_pipeline import seed_texts

    (tmp_path / "en" / "faq" / "deep").mkdir(parents=True)
    (tmp_path / "en" / "faq" / "a.md").write_text("# A\n\nintro\n## Two\n\nmore\n")
    (tmp_path / "en" / "faq" / "deep" / "b.md").write_text("# B\n\nnot picked by en/faq/*.md\n")
    (tmp_path / "en" / "faq" / "c.md").write_bytes(b"# C\x00binary")
    texts, size = seed_texts(tmp_path, "en/faq/*.md")
    assert texts == ["", "A\n\nintro\n#", "Two\n\nmore\n"]
    assert size == len("# A\n\nintro\n## Two\n\nmore\n")


def test_one_percentile_rule_for_every_latency_figure() -> None:
    from evaluation.quality import percentile

    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.5  # the median
    assert percentile(values, 95) == pytest.approx(95.05)  # numpy's default, linear between ranks
    assert percentile([7.0], 95) == 7.0


def test_model_rewrite_goes_through_the_chains_rewrite_step(
    tmp_path: Path, docs_zip: Path, openai_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--rewrite model: one rewrite call per question to the configured OpenAI-compatible server."""
    english = {q["question"]: q["english"] for q in TRANSLATED}

    def translate(request) -> str:
        asked = request.text("user").split("<question>")[1].split("</question>")[0].strip()
        return english[asked]

    openai_server.answer_with(translate, match=lambda r: r.is_rewrite)
    monkeypatch.setenv("DEEPSEEK_BASE_URL", openai_server.url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", openai_server.api_key)
    questions = tmp_path / "pt.jsonl"
    questions.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in TRANSLATED))
    result = evaluate(
        "--questions", str(questions), "--source", str(docs_zip), "--glob", "en/faq/*.md", "--modes", "dense",
        "--repeat", "1", "--no-progress", "--data-dir", str(tmp_path / "eval-index"), "--rewrite", "model",
        "--out", str(tmp_path / "model"),
    )
    assert result.returncode == 0, result.stderr
    assert [r.is_rewrite for r in openai_server.chat_requests()] == [True, True]
    report = json.loads((tmp_path / "model" / "evaluation.json").read_text())
    assert report["systems"]["dense"]["hit@3"] == 1.0
