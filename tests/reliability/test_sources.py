"""Sync never empties an index by surprise: another --source keeps the first one's chunks unless --prune (or
--rebuild) asks; a file that vanished from the same source still loses its chunks."""

from __future__ import annotations

import re
import zipfile

from tests.reliability.support import SEED, ask, ingest, no_duplicates, rows, seed_answered

NEW_FAQ = "# Widget FAQ\n\n### Do widgets float?\n\nWidgets float on water because they are hollow.\n"


def summary(result) -> dict[str, int]:
    """The ingest's summary line as numbers: {"files read": 1, "chunks deleted": 0, ...}."""
    line = next(line for line in result.stdout.splitlines() if line.startswith("files:"))
    files, chunks = line.split(" | ")[:2]
    return {
        f"{kind} {name}": int(n)
        for kind, part in (("files", files), ("chunks", chunks))
        for n, name in re.findall(r"(\d+) (\w+)", part)
    }


def test_another_source_keeps_the_first_sources_chunks_until_prune(index_copy, tmp_path, pristine_rows):
    other = tmp_path / "other"
    (other / "en" / "faq").mkdir(parents=True)
    (other / "en" / "faq" / "widget_faq.md").write_text(NEW_FAQ)

    moved = ingest("--source", str(other))
    assert moved.returncode == 0, moved
    assert summary(moved)["chunks deleted"] == 0
    assert f"kept {pristine_rows} chunks of 4 files that are not in {other}" in moved.stderr
    assert "--prune" in moved.stderr
    found = rows(index_copy)
    sources = {r["source"] for r in found}
    assert "en/faq/widget_faq.md" in sources and len(sources) == 5
    assert len(found) > pristine_rows and no_duplicates(found)
    assert seed_answered(ask("--retrieve-only", "--json", SEED))

    pruned = ingest("--source", str(other), "--prune")
    assert pruned.returncode == 0, pruned
    assert summary(pruned)["chunks deleted"] == pristine_rows
    assert {r["source"] for r in rows(index_copy)} == {"en/faq/widget_faq.md"}


def test_a_file_gone_from_the_same_source_still_loses_its_chunks(docs_zip, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    corpus = tmp_path / "corpus"
    with zipfile.ZipFile(docs_zip) as zf:
        for name in zf.namelist():
            if name.startswith("en/faq/") and name.endswith(".md"):
                (corpus / name).parent.mkdir(parents=True, exist_ok=True)
                (corpus / name).write_bytes(zf.read(name))
    assert ingest("--source", str(corpus)).returncode == 0
    (corpus / "en" / "faq" / "troubleshooting.md").unlink()

    synced = ingest("--source", str(corpus) + "/")  # the same folder, typed differently
    assert synced.returncode == 0, synced
    assert summary(synced)["chunks deleted"] > 0 and "kept" not in synced.stderr
    assert "en/faq/troubleshooting.md" not in {r["source"] for r in rows(tmp_path / "data")}
