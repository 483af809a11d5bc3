"""Hostile corpus files: runs without whitespace (minified JSON, base64, one letter repeated) are cut so that
every chunk fits the model's window and Milvus' `text` field; special files are skipped, not read."""

from __future__ import annotations

import os
import random
import string
import sys

import pytest
from langchain_core.documents import Document

from config.settings import get_settings
from tests.reliability.support import TEXT_FIELD_BYTES, ingest, no_duplicates, rows

HEADING_FIELD_BYTES = 2048
WIDGET = "# Widget FAQ\n\n### Do widgets float?\n\nWidgets float on water because they are hollow.\n"


def hostile_runs() -> dict[str, str]:
    rnd = random.Random(16)
    return {
        "one letter, 70 KB": "a" * 70_000,
        "base64, 70 KB": "".join(rnd.choice(string.ascii_letters + string.digits + "+/") for _ in range(70_000)),
        "minified JSON, 100 KB": '{"k":[' + ",".join(f'{{"id":{i},"v":"x{i}"}}' for i in range(4_000)) + "]}",
        "letters and symbols outside the vocabulary, 70 KB": "é€☃" * 23_000,
        "letters, 1.99 MB": "".join(rnd.choice(string.ascii_letters) for _ in range(1_990_000)),
    }


@pytest.fixture(scope="module")
def splitter():
    from embeddings import token_window
    from loaders.splitter import MarkdownSplitter

    tokenizer, window = token_window(get_settings())
    return MarkdownSplitter.from_tokenizer(tokenizer, window), tokenizer, window


@pytest.mark.parametrize("kind", list(hostile_runs()))
def test_every_chunk_fits_the_window_and_the_text_field_whatever_the_run(kind, splitter):
    split, tokenizer, window = splitter
    run = hostile_runs()[kind]
    text = f"# Blob\n\nSome prose before it.\n\n{run}\n\n## {run[:5000]}\n\nAfter it.\n"
    chunks = split.split_documents([Document(text, metadata={"source": "en/blob.md", "title": "Blob"})])
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(tokenizer.encode(chunk.page_content).ids) <= window
        assert len(chunk.page_content.encode()) <= TEXT_FIELD_BYTES
        assert len(chunk.metadata["heading"].encode()) <= HEADING_FIELD_BYTES
    joined = "".join(c.page_content for c in chunks)
    assert run[:40] in joined and run[-40:] in joined and "After it." in joined


def test_a_file_with_long_lines_without_spaces_is_indexed(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    faq = tmp_path / "corpus" / "en" / "faq"
    faq.mkdir(parents=True)
    runs = hostile_runs()
    (faq / "widget_faq.md").write_text(WIDGET)
    (faq / "blob.md").write_text(f"# Blob\n\n{runs['base64, 70 KB']}\n\n## JSON\n\n{runs['minified JSON, 100 KB']}\n")
    (faq / "big.md").write_text(f"# Big\n\n{runs['letters, 1.99 MB']}\n")  # just under RAG_MAX_FILE_BYTES

    done = ingest("--source", str(tmp_path / "corpus"))
    assert done.returncode == 0, done
    assert "Traceback" not in done.stderr and "skipped" not in done.stderr
    found = rows(tmp_path / "data")
    assert no_duplicates(found)
    assert {r["source"] for r in found} == {"en/faq/widget_faq.md", "en/faq/blob.md", "en/faq/big.md"}
    assert max(len(r["text"].encode()) for r in found) <= TEXT_FIELD_BYTES


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs are POSIX")
def test_a_fifo_named_md_is_skipped_with_a_reason_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    faq = tmp_path / "corpus" / "en" / "faq"
    faq.mkdir(parents=True)
    (faq / "widget_faq.md").write_text(WIDGET)
    os.mkfifo(faq / "pipe.md")  # reading it would wait for a writer forever

    done = ingest("--source", str(tmp_path / "corpus"), timeout=120)
    assert done.returncode == 0, done
    assert "skipped en/faq/pipe.md: a FIFO, not a regular file" in done.stderr
    assert {r["source"] for r in rows(tmp_path / "data")} == {"en/faq/widget_faq.md"}
