"""Who holds the index, and an ingest killed half way: the lock message names the holder (pid, program,
whether it is an ingest); the next ask.py says the last ingest did not finish; the next ingest finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.reliability.support import INGEST, SEED, ask, ingest, no_duplicates, record, rows, seed_answered, wait_for


def test_an_index_held_by_a_program_that_is_not_an_ingest(index_copy, docs_zip):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pymilvus import MilvusClient; "
            "MilvusClient(uri=sys.argv[1]); print('ready', flush=True); time.sleep(120)",
            str(index_copy / "milvus.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = ingest("--source", str(docs_zip))
    finally:
        holder.kill()
        holder.wait(30)
    assert result.returncode == 1, result
    line = result.error_line()
    assert "is in use by another process" in line
    assert f"pid {holder.pid}, python -c (not an ingest)" in line and f"kill {holder.pid}" in line
    assert "is an ingest still running" not in line


def test_a_running_ingest_is_named_and_a_killed_one_is_noticed_then_finished(index_copy, docs_zip, pristine_rows):
    proc = subprocess.Popen(
        [sys.executable, str(INGEST), "--no-progress", "--source", str(docs_zip), "--all"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The ingest marks its record "running" once it holds the index, before it writes anything.
        wait_for(lambda: record(index_copy)["state"] == "running", "the ingest to start writing")
        held = ask("--retrieve-only", "--json", SEED)
        assert held.returncode == 1, held
        assert f"pid {proc.pid}, ingest.py (an ingest)" in held.error_line()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)

    asked = ask("--retrieve-only", "--json", SEED)
    assert seed_answered(asked)  # the previous index is still searchable
    (warning,) = asked.warnings()
    assert "did not finish" in warning and f"--source {docs_zip} --all" in warning

    finished = ingest("--source", str(docs_zip), "--all")
    assert finished.returncode == 0, finished
    assert record(index_copy)["state"] == "done"
    found = rows(index_copy, ("pk", "source"))
    assert no_duplicates(found) and len(found) > pristine_rows
    again = ask("--retrieve-only", "--json", SEED)
    assert seed_answered(again) and again.warnings() == []
