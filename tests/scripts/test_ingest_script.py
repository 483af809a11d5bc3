"""`python scripts/ingest.py` as a user runs it: real zip, real model, Milvus Lite, separate processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from config.settings import get_settings
from index.pipeline import run_ingest
from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]
INGEST = REPO / "scripts" / "ingest.py"
GOLD = "Milvus deals with two types of data"


def ingest_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(INGEST), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def search(question: str, k: int = 3) -> list[str]:
    """Top-k chunk texts, searched from another process as `ask.py` would (Milvus Lite is one process at a time)."""
    code = (
        "import json, sys; from retrieval.retriever import build_retriever; "
        f"print(json.dumps([d.page_content for d in build_retriever(k={k}).invoke(sys.argv[1])]))"
    )
    result = subprocess.run([sys.executable, "-c", code, question], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def summary_numbers(stdout: str) -> dict[str, int]:
    """The summary line as numbers: {"files read": 4, "chunks added": 61, ...}."""
    line = stdout.strip().splitlines()[-1]
    numbers = {}
    for part in line.split("|")[:2]:
        kind, _, counts = part.partition(":")
        for count in counts.split(","):
            value, name = count.split()
            numbers[f"{kind.strip()} {name}"] = int(value)
    return numbers


def wait_for_progress(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, int] | None:
    """Read the ingest's progress bar on stderr until it shows chunks written, as (done, total); None when the
    process ends (or the timeout passes) first."""
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        char = proc.stderr.read(1)
        if not char:
            return None
        if char not in "\r\n":
            line += char
            continue
        match = re.search(r"embedding:.*\|\s*(\d+)/(\d+)", line)
        if match and int(match.group(1)) > 0:
            return int(match.group(1)), int(match.group(2))
        line = ""
    return None


def extract_faq(zip_path: Path, dest: Path, extra: int = 0) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        names = [n for n in zf.namelist() if n.startswith("en/faq/") and n.endswith(".md")]
        guides = ("en/userGuide/", "en/adminGuide/")
        others = [n for n in zf.namelist() if n.startswith(guides) and n.endswith(".md")][:extra]
        for name in names + others:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
    return dest


def test_faq_ingest_then_search_finds_where_data_is_stored(docs_zip, tmp_path):
    corpus = extract_faq(docs_zip, tmp_path / "corpus")
    (corpus / "en" / "faq" / "headings_only.md").write_text("# Coming soon\n\n## Nothing here yet\n")
    first = ingest_cli("--source", str(corpus))
    assert first.returncode == 0, first.stderr
    numbers = summary_numbers(first.stdout)
    assert numbers["files read"] == 5 and numbers["chunks added"] > 20
    assert (numbers["files unchanged"], numbers["files empty"]) == (0, 1)  # a fresh index has nothing unchanged
    assert any(GOLD in text for text in search("How is data stored in milvus?"))

    again = ingest_cli("--source", str(corpus))
    assert again.returncode == 0, again.stderr
    numbers = summary_numbers(again.stdout)
    assert (numbers["chunks added"], numbers["chunks updated"], numbers["chunks deleted"]) == (0, 0, 0)
    assert (numbers["files unchanged"], numbers["files empty"]) == (4, 1)


def test_editing_and_deleting_files_touches_only_their_chunks(docs_zip, tmp_path):
    corpus = extract_faq(docs_zip, tmp_path / "corpus")
    settings = get_settings()
    first = run_ingest(settings, source=str(corpus), progress=False)
    perf = corpus / "en" / "faq" / "performance_faq.md"
    perf.write_text(perf.read_text() + "\n\n#### Is this an edited question?\n\nYes, this answer was added.\n")
    edited = run_ingest(settings, source=str(corpus), progress=False)
    assert edited.files_unchanged == 3 and edited.files_changed == 1
    assert edited.chunks_added + edited.chunks_updated < first.chunks_added / 2
    assert any("this answer was added" in t for t in search("Is this an edited question?", k=1))

    (corpus / "en" / "faq" / "troubleshooting.md").unlink()
    removed = run_ingest(settings, source=str(corpus), progress=False)
    assert removed.files_removed == 1 and removed.chunks_deleted > 0
    assert removed.chunks_added == removed.chunks_updated == 0


def test_a_killed_ingest_keeps_the_old_index_and_the_next_run_converges(docs_zip, tmp_path):
    corpus = extract_faq(docs_zip, tmp_path / "corpus", extra=60)  # > one write batch (512 chunks)
    assert ingest_cli("--source", str(docs_zip)).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, str(INGEST), "--source", str(corpus), "--glob", "**/*.md"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    done_of_total = wait_for_progress(proc)  # the first batch is embedded and its insert under way
    assert done_of_total is not None, proc.stderr.read()
    assert done_of_total[0] < done_of_total[1], "one batch held every chunk; give the ingest more files"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)

    assert any(GOLD in text for text in search("How is data stored in milvus?"))

    done = ingest_cli("--source", str(corpus), "--glob", "**/*.md")
    assert done.returncode == 0, done.stderr
    settings = get_settings()
    from index.store import open_client

    client = open_client(settings)
    client.load_collection(settings.collection)
    rows = client.query(settings.collection, filter="", output_fields=["pk", "text"], limit=16384)
    client.close()
    report = run_ingest(settings, source=str(corpus), glob="**/*.md", progress=False)
    assert (report.chunks_added, report.chunks_deleted, report.chunks_updated) == (0, 0, 0)
    assert len(rows) == len({r["pk"] for r in rows}) == report.chunks_unchanged


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--source", "does/not/exist"], "does not exist"),
        (["--source", "{empty}"], "has no files"),
        (["--source", "{zip}", "--glob", "en/nothing/*.md"], "--all"),
    ],
)
def test_bad_sources_fail_with_one_line_and_a_fix(args, expected, docs_zip, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.format(empty=empty, zip=docs_zip) for a in args]
    result = ingest_cli(*args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_server_uri_with_nothing_listening(docs_zip, monkeypatch):
    monkeypatch.setenv("MILVUS_URI", f"http://127.0.0.1:{free_port()}")
    result = ingest_cli("--source", str(docs_zip))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach Milvus at http://127.0.0.1:")


def test_an_index_held_by_another_process(docs_zip):
    settings = get_settings()
    settings.data_dir.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pymilvus import MilvusClient; "
            f"MilvusClient(uri={str(settings.milvus_lite_path)!r}); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = ingest_cli("--source", str(docs_zip))
    finally:
        holder.kill()
        holder.wait(10)
    assert result.returncode != 0
    assert "in use by another process" in result.stderr.strip().splitlines()[-1]
