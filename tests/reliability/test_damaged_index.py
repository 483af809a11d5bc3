"""A damaged Milvus Lite index, as a crash or a full disk leaves it: one line naming the folder and the fix,
`--repair` / `--rebuild` move it aside (kept) and build a fresh one; a silent rollback is noticed and undone."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.support import (
    SEED,
    ask,
    collection_dir,
    halve,
    ingest,
    no_duplicates,
    record,
    rows,
    seed_answered,
)


def half_parquet(collection: Path) -> None:
    halve(next((collection / "partitions" / "_default" / "data").glob("*.parquet")))


def half_vector_index(collection: Path) -> None:
    halve(next((collection / "partitions" / "_default" / "indexes").glob("*.vector.flat.idx")))


def half_schema(collection: Path) -> None:
    halve(collection / "schema.json")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "parquet segment": half_parquet,
    "vector index": half_vector_index,
    "schema.json": half_schema,
}


def assert_damage_line(line: str, data: Path, docs_zip: Path) -> None:
    assert f"index at {data / 'milvus.db'} is damaged" in line
    # the fix is the command that rebuilds what the last ingest indexed
    assert "--repair" in line and str(docs_zip) in line and "en/faq/*.md" in line


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_index_says_so_in_one_line_and_repair_rebuilds_it_keeping_the_damaged_files(
    damage, index_copy, docs_zip, pristine_rows
):
    DAMAGE[damage](collection_dir(index_copy))

    asked = ask("--retrieve-only", "--json", SEED)
    assert asked.returncode == 1, asked
    assert_damage_line(asked.error_line(), index_copy, docs_zip)
    synced = ingest("--source", str(docs_zip))
    assert synced.returncode == 1, synced
    assert_damage_line(synced.error_line(), index_copy, docs_zip)

    repaired = ingest("--source", str(docs_zip), "--repair")
    assert repaired.returncode == 0, repaired
    aside = sorted(index_copy.glob("my_rag_collection.damaged-*"))
    assert len(aside) == 1 and (aside[0] / "schema.json").is_file()  # moved, not deleted
    assert f"moved aside to {aside[0]}" in repaired.stderr
    found = rows(index_copy)
    assert len(found) == pristine_rows and no_duplicates(found)
    assert seed_answered(ask("--retrieve-only", "--json", SEED))


def test_rebuild_also_moves_a_damaged_index_aside(index_copy, docs_zip, pristine_rows):
    half_schema(collection_dir(index_copy))
    rebuilt = ingest("--source", str(docs_zip), "--rebuild")
    assert rebuilt.returncode == 0, rebuilt
    assert len(list(index_copy.glob("my_rag_collection.damaged-*"))) == 1
    assert len(rows(index_copy)) == pristine_rows
    assert seed_answered(ask("--retrieve-only", "--json", SEED))


def test_repair_leaves_a_healthy_index_alone(index_copy, docs_zip, pristine_rows):
    repaired = ingest("--source", str(docs_zip), "--repair")
    assert repaired.returncode == 0, repaired
    assert "moved aside" not in repaired.stderr
    assert not list(index_copy.glob("*.damaged-*"))
    assert len(rows(index_copy)) == pristine_rows


def test_a_rolled_back_manifest_is_noticed_and_the_next_ingest_restores_the_rows(
    index_copy, docs_zip, pristine_rows
):
    # Milvus Lite falls back to manifest.json.prev without a word: the index silently loses rows.
    halve(collection_dir(index_copy) / "manifest.json")

    asked = ask("--retrieve-only", "--json", SEED)
    assert asked.returncode == 0, asked  # what is left still answers, but the user is told
    (warning,) = asked.warnings()
    assert re.search(rf"holds \d+ chunks, but the last ingest \(.*\) left {pristine_rows}", warning), warning
    assert f"--source {docs_zip}" in warning

    synced = ingest("--source", str(docs_zip))
    assert synced.returncode == 0, synced
    assert any("holds" in w and "left" in w for w in synced.warnings()), synced
    found = rows(index_copy)
    assert len(found) == pristine_rows and no_duplicates(found)
    assert record(index_copy)["rows"] == pristine_rows

    again = ask("--retrieve-only", "--json", SEED)
    assert seed_answered(again) and again.warnings() == []


def test_a_file_where_the_database_folder_should_be(index_copy, docs_zip, pristine_rows):
    db = index_copy / "milvus.db"
    db.rename(index_copy / "moved-by-someone")
    db.write_bytes(b"not a database\n")

    asked = ask("--retrieve-only", "--json", SEED)
    assert asked.returncode == 1, asked
    line = asked.error_line()
    assert f"{db} is a file, not a Milvus Lite index folder" in line and "in use" not in line

    repaired = ingest("--source", str(docs_zip), "--repair")
    assert repaired.returncode == 0, repaired
    (aside,) = index_copy.glob("milvus.db.damaged-*")
    assert aside.read_bytes() == b"not a database\n"
    assert len(rows(index_copy)) == pristine_rows
