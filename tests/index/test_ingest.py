"""Incremental ingest semantics on a real Milvus Lite database, with small documents and fake embeddings."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from config.errors import EmbeddingModelError
from config.settings import Settings, get_settings
from index.ingest import OLD_SUFFIX, REBUILD_SUFFIX, ingest
from index.store import open_client

DIM = 16


class CountingEmbedding(DeterministicFakeEmbedding):
    """Deterministic vectors; remembers which texts it embedded and can fail after a number of calls."""

    embedded: list[str] = []
    fail_after_calls: int | None = None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.fail_after_calls is not None:
            if self.fail_after_calls == 0:
                raise RuntimeError("embedding crashed")
            self.fail_after_calls -= 1
        self.embedded.extend(texts)
        return super().embed_documents(texts)


def split(docs: list[Document]) -> list[Document]:
    out = []
    for doc in docs:
        parts = [p for p in doc.page_content.split("\n\n") if p.strip()]
        for i, part in enumerate(parts):
            key = f"{doc.metadata['source']}\0{doc.metadata['content_hash']}\0{i}"
            meta = dict(doc.metadata, heading=doc.metadata["title"], chunk_index=i, n_chunks=len(parts))
            out.append(Document(part, metadata=meta, id=hashlib.sha256(key.encode()).hexdigest()[:32]))
    return out


def as_docs(files: dict[str, str]) -> list[Document]:
    return [
        Document(
            text,
            metadata={
                "source": src,
                "title": src,
                "heading": "",
                "content_hash": hashlib.sha256(text.encode()).hexdigest(),
            },
        )
        for src, text in files.items()
    ]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return get_settings(data_dir_override=tmp_path / "data")


@pytest.fixture
def client(settings: Settings) -> Iterator:
    c = open_client(settings)
    yield c
    c.close()


def run(client, settings, files, emb=None, **kw):
    emb = emb or CountingEmbedding(size=DIM)
    kw.setdefault("in_scope", lambda s: s.startswith("docs/"))
    return ingest(
        client,
        settings.collection,
        as_docs(files),
        split=split,
        embeddings=emb,
        embedding_model="fake-16",
        dim=DIM,
        progress=False,
        **kw,
    )


def texts(client, settings) -> list[str]:
    rows = client.query(settings.collection, filter="", output_fields=["text"], limit=1000)
    return sorted(r["text"] for r in rows)


FILES = {
    "docs/a.md": "alpha one\n\nalpha two",
    "docs/b.md": "beta one\n\nbeta two\n\nbeta three",
    "docs/c.md": "gamma one",
}


def test_unchanged_files_are_not_embedded_again(client, settings):
    first = run(client, settings, FILES)
    assert (first.chunks_added, first.files_read) == (6, 3)
    emb = CountingEmbedding(size=DIM)
    emb.embedded = []
    again = run(client, settings, FILES, emb=emb)
    assert emb.embedded == []
    assert (again.chunks_added, again.chunks_updated, again.chunks_deleted, again.chunks_unchanged) == (0, 0, 0, 6)
    assert again.files_unchanged == 3


def test_an_edited_file_only_reembeds_its_own_chunks(client, settings):
    run(client, settings, FILES)
    emb = CountingEmbedding(size=DIM)
    emb.embedded = []
    edited = dict(FILES, **{"docs/a.md": "alpha one\n\nalpha two, revised\n\nalpha three"})
    report = run(client, settings, edited, emb=emb)
    assert sorted(emb.embedded) == ["alpha one", "alpha three", "alpha two, revised"]
    assert (report.chunks_updated, report.chunks_added, report.chunks_deleted) == (2, 1, 0)
    assert texts(client, settings) == sorted(
        ["alpha one", "alpha two, revised", "alpha three", "beta one", "beta two", "beta three", "gamma one"]
    )


def test_a_deleted_file_loses_exactly_its_chunks(client, settings):
    run(client, settings, FILES)
    report = run(client, settings, {k: v for k, v in FILES.items() if k != "docs/b.md"})
    assert report.chunks_deleted == 3
    assert texts(client, settings) == ["alpha one", "alpha two", "gamma one"]


def test_files_outside_the_scope_or_unreadable_this_time_are_kept(client, settings):
    run(client, settings, FILES)
    run(client, settings, {"other/x.md": "outside"}, in_scope=lambda s: s.startswith("other/"))
    report = run(client, settings, {"docs/a.md": FILES["docs/a.md"]}, skipped=[("docs/c.md", "not UTF-8")])
    assert report.files_skipped == 1
    assert "gamma one" in texts(client, settings) and "outside" in texts(client, settings)
    assert "beta one" not in texts(client, settings)


def test_a_crash_mid_write_keeps_the_old_index_and_the_next_run_converges(client, settings):
    run(client, settings, FILES)
    big = {f"docs/n{i}.md": "\n\n".join(f"new {i} part {j}" for j in range(40)) for i in range(20)}
    changed = dict(FILES, **{"docs/a.md": "alpha rewritten"}, **big)
    crashing = CountingEmbedding(size=DIM)
    crashing.fail_after_calls = 1
    with pytest.raises(RuntimeError):
        run(client, settings, changed, emb=crashing)
    after_crash = texts(client, settings)
    assert {"alpha one", "alpha two", "beta one", "gamma one"} <= set(after_crash)
    run(client, settings, changed)
    final = texts(client, settings)
    expected = sorted(c.page_content for c in split(as_docs(changed)))
    assert final == expected
    assert len(final) == len(set(final))


def test_rebuild_swaps_in_a_fresh_collection_and_recovers_a_half_done_swap(client, settings):
    run(client, settings, FILES)
    report = run(client, settings, {"docs/z.md": "zeta"}, rebuild=True)
    assert report.chunks_added == 1
    assert texts(client, settings) == ["zeta"]
    assert client.list_collections() == [settings.collection]
    # A process killed between the two renames of a swap leaves only the old name behind.
    client.rename_collection(settings.collection, settings.collection + OLD_SUFFIX)
    run(client, settings, {"docs/z.md": "zeta"})
    assert texts(client, settings) == ["zeta"]
    assert client.list_collections() == [settings.collection]


def test_a_leftover_rebuild_collection_is_dropped(client, settings):
    run(client, settings, FILES)
    with pytest.raises(RuntimeError):
        run(client, settings, {"docs/q.md": "half"}, rebuild=True, emb=_failing())
    assert settings.collection + REBUILD_SUFFIX in client.list_collections()
    assert texts(client, settings) == sorted(c.page_content for c in split(as_docs(FILES)))
    run(client, settings, FILES)
    assert client.list_collections() == [settings.collection]


def _failing() -> CountingEmbedding:
    emb = CountingEmbedding(size=DIM)
    emb.fail_after_calls = 0
    return emb


def test_another_embedding_model_is_refused_with_a_rebuild_hint(client, settings):
    run(client, settings, FILES)
    with pytest.raises(EmbeddingModelError, match="--rebuild"):
        ingest(
            client,
            settings.collection,
            as_docs(FILES),
            split=split,
            embeddings=CountingEmbedding(size=8),
            embedding_model="fake-8",
            dim=8,
            in_scope=lambda s: True,
            progress=False,
        )


def test_a_file_edited_down_to_nothing_indexable_loses_its_old_chunks(client, settings):
    run(client, settings, FILES)
    report = run(client, settings, dict(FILES, **{"docs/c.md": "   "}))
    assert report.chunks_deleted == 1
    assert "gamma one" not in texts(client, settings)
    again = run(client, settings, dict(FILES, **{"docs/c.md": "   "}))
    assert (again.files_unchanged, again.files_empty) == (2, 1)


def test_an_index_built_with_heading_vectors_is_rebuilt_once_without_them(client, settings, caplog):
    """The previous version's collection has a heading_vector field that inserts no longer fill."""
    from index.store import describe
    from tests.index.legacy import create_legacy_collection, legacy_row

    create_legacy_collection(client, settings.collection, dim=DIM, embedding_model="fake-16")
    old = CountingEmbedding(size=DIM).embed_query("alpha, as the previous version indexed it")
    client.insert(settings.collection, [legacy_row("old-1", "alpha, old", old, source="docs/a.md", heading="a")])
    with caplog.at_level("WARNING", logger="index.ingest"):
        first = run(client, settings, FILES)
    assert "heading_vector field that this version no longer fills" in caplog.text and "rebuilding" in caplog.text
    assert first.chunks_added == 6
    assert texts(client, settings) == sorted(c.page_content for c in split(as_docs(FILES)))
    assert not describe(client, settings.collection).outdated
    assert client.list_collections() == [settings.collection]
    caplog.clear()
    with caplog.at_level("WARNING", logger="index.ingest"):
        again = run(client, settings, FILES)
    assert (again.chunks_added, again.chunks_unchanged) == (0, 6)
    assert "rebuilding" not in caplog.text
