"""The markdown loader on the real Milvus docs zip and on small corpora built for one behaviour each."""

from __future__ import annotations

import hashlib
import logging
import re
import zipfile
from pathlib import Path

import pytest
from langchain_core.document_loaders import BaseLoader

from config.errors import SourceError
from loaders.markdown import MarkdownCorpusLoader, json_to_text, markdown_to_text
from loaders.sources import ALL_GLOB
from tests.loaders.conftest import DocsServer
from tests.loaders.support import files_under, zip_bytes


def load(source: Path | str, glob: str | list[str], **kwargs: object) -> tuple[list, MarkdownCorpusLoader]:
    kwargs = {"cache_dir": Path("cache"), "max_file_bytes": 2_000_000, "download_timeout": 5.0, **kwargs}
    loader = MarkdownCorpusLoader(source, glob, **kwargs)  # type: ignore[arg-type]
    return loader.load(), loader


@pytest.fixture(scope="module")
def all_docs(docs_zip: Path) -> dict[str, object]:
    # Every argument given, so that no settings are read outside the per-test isolation.
    loader = MarkdownCorpusLoader(
        docs_zip, ALL_GLOB, cache_dir=Path("unused"), max_file_bytes=2_000_000, download_timeout=5.0
    )
    return {d.metadata["source"]: d for d in loader.load()}


def test_faq_glob_loads_the_four_faq_pages(docs_zip: Path) -> None:
    docs, loader = load(docs_zip, "en/faq/*.md")
    assert isinstance(loader, BaseLoader)
    assert [d.metadata["source"] for d in docs] == [
        "en/faq/operational_faq.md",
        "en/faq/performance_faq.md",
        "en/faq/product_faq.md",
        "en/faq/troubleshooting.md",
    ]
    assert [d.metadata["title"] for d in docs] == [
        "Operational FAQ",
        "Performance FAQ",
        "Product FAQ",
        "Troubleshooting",
    ]
    with zipfile.ZipFile(docs_zip) as zf:
        for doc in docs:
            raw = zf.read(doc.metadata["source"])
            assert doc.metadata["content_hash"] == hashlib.sha256(raw).hexdigest()
            assert doc.metadata["heading"] == ""
    stats = loader.stats
    assert (stats.files_in_source, stats.matched, stats.loaded, stats.skipped) == (199, 4, 4, [])
    assert "loaded 4 of 4 matched files (199 in" in stats.summary()


def test_all_loads_every_markdown_and_json_file(docs_zip: Path) -> None:
    docs, loader = load(docs_zip, ALL_GLOB)
    assert len(docs) == loader.stats.loaded == loader.stats.matched == 199
    assert sum(d.metadata["source"].endswith(".json") for d in docs) == 3
    assert all(set(d.metadata) == {"source", "title", "content_hash", "heading"} for d in docs)


def test_front_matter_comments_and_tab_markers_are_gone(all_docs: dict) -> None:
    for source, doc in all_docs.items():
        text = doc.page_content
        assert not text.startswith("---"), source
        assert "<!-- TOC -->" not in text and "<!--" not in text, source
        assert "{{tab}}" not in text, source
        assert not re.search(r"^(id|summary|title): ", text[:300], re.M), source
    assert all_docs["en/faq/product_faq.md"].page_content.startswith("# Product FAQ\n\n#### How much")


def test_variables_are_substituted_from_variables_json(all_docs: dict) -> None:
    leftovers = {s for s, d in all_docs.items() if "{{var." in d.page_content}
    # Only the site's own tail fragment uses variables that Variables.json does not define.
    assert leftovers == {"en/fragments/tail.md"}
    upgrade = all_docs["en/adminGuide/upgrade_milvus_standalone-helm.md"].page_content
    assert "Upgrade Milvus from v2.1.x to 2.4.0" in upgrade
    assert "-t 2.4.0 -w milvusdb/milvus:v2.4.0" in upgrade  # inside a code block too


def test_fragments_are_inlined_even_when_the_glob_leaves_them_out(docs_zip: Path) -> None:
    docs, _ = load(docs_zip, "en/faq/operational_faq.md")
    text = docs[0].page_content
    assert "{{fragments/" not in text
    assert "SIMD (Single Instruction, Multiple Data)" in text  # from en/fragments/cpu_support.md


def test_json_files_become_readable_text(all_docs: dict) -> None:
    variables = all_docs["en/Variables.json"]
    assert variables.metadata["title"] == "Variables"
    assert "milvus_release_version: 2.4.0" in variables.page_content.splitlines()
    home = all_docs["en/home/home.json"].page_content
    assert "title: Welcome to Milvus Documentation!" in home
    assert "<a href" not in home and '"' not in home.splitlines()[0]
    menu = all_docs["en/menuStructure/en.json"].page_content
    # One paragraph per menu entry; the empty label2/label3 values are left out.
    assert "\n\n  - id: overview.md\n    title: What is Milvus\n    label1: about\n    order: 0\n\n" in menu


def test_json_to_text_shapes() -> None:
    assert json_to_text({"a": 1, "b": {"c": "x <b>y</b>", "d": ""}, "e": [1, True], "f": None}) == (
        "a: 1\nb:\n  c: x y\ne:\n  - 1\n  - true"
    )
    assert json_to_text([{"k": "v", "w": 2}, {"k": "u"}]) == "- k: v\n  w: 2\n\n- k: u"


def test_title_falls_back_to_first_h1_then_file_stem() -> None:
    assert markdown_to_text("---\ntitle: 'Quoted'\n---\n# H1\n", "a/b.md")[1] == "Quoted"
    assert markdown_to_text("intro\n```\n# not a title\n```\n# Real Title\n", "a/b.md")[1] == "Real Title"
    assert markdown_to_text("## only h2\n", "a/some_page.md")[1] == "some_page"


def test_comments_inside_code_are_code() -> None:
    text, _ = markdown_to_text(
        "a <!-- gone --> b\n\n```html\n<!-- kept -->\n```\n<!--\nmulti\n-->c\n", "x.md"
    )
    assert text == "a  b\n\n```html\n<!-- kept -->\n```\nc"


def test_table_rules_are_shortened_outside_code() -> None:
    text, _ = markdown_to_text("| a | b |\n|:----|-----:|\n| 1 | 2 |\n\n```\n|-----|\n```\n", "t.md")
    assert text == "| a | b |\n|:-|-:|\n| 1 | 2 |\n\n```\n|-----|\n```"


def _folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "corpus"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_templates_need_their_definitions_in_the_corpus(tmp_path: Path) -> None:
    page = b"# P\n\nVersion {{var.v}}, {{var.nested.x}}, {{var.nope}}.\n\n{{fragments/f.md}}\n"
    with_vars = _folder(
        tmp_path,
        {
            "en/Variables.json": b'{"v": "9.9", "nested": {"x": "deep"}}',
            "en/fragments/f.md": b"Fragment says {{var.v}}.",
            "en/guide/p.md": page,
        },
    )
    docs, _ = load(with_vars, "en/guide/*.md")
    assert docs[0].page_content == "# P\n\nVersion 9.9, deep, {{var.nope}}.\n\nFragment says 9.9."

    (with_vars / "en" / "Variables.json").unlink()
    docs, _ = load(with_vars, "en/guide/*.md")
    assert "Version {{var.v}}" in docs[0].page_content  # nothing to substitute from: left as written


def test_bad_files_are_skipped_counted_and_listed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = {
        "en/good.md": b"# Good\n\nFine text.\n",
        "en/latin1.md": "# Caf\u00e9\n".encode("latin-1"),
        "en/binary.md": b"\x89PNG\r\n\x1a\n\0\0\0",
        "en/big.md": b"# Big\n\n" + b"word " * 400,
        "en/broken.json": b'{"a": ',
    }
    for source in (_folder(tmp_path, files), tmp_path / "corpus.zip"):
        if source.suffix == ".zip":
            source.write_bytes(zip_bytes(files))
        with caplog.at_level(logging.WARNING, logger="loaders.markdown"):
            docs, loader = load(source, ALL_GLOB, max_file_bytes=1000)
        assert [d.metadata["source"] for d in docs] == ["en/good.md"]
        stats = loader.stats
        assert (stats.matched, stats.loaded, len(stats.skipped)) == (5, 1, 4)
        reasons = {s.path: s.reason for s in stats.skipped}
        assert "larger than RAG_MAX_FILE_BYTES" in reasons["en/big.md"]
        assert "binary" in reasons["en/binary.md"]
        assert "not UTF-8" in reasons["en/latin1.md"]
        assert "invalid JSON" in reasons["en/broken.json"]
        assert "skipped en/binary.md" in caplog.text
        assert "skipped 4" in stats.summary()
        caplog.clear()


def test_crlf_and_bom_are_normalised(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a.md": b"\xef\xbb\xbf---\r\ntitle: T\r\n---\r\n# T\r\n\r\nbody\r\n"})
    docs, _ = load(root, "*.md")
    assert docs[0].page_content == "# T\n\nbody"
    assert docs[0].metadata["title"] == "T"


def test_source_errors_surface_from_load(docs_zip: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        load(tmp_path / "missing.zip", "en/faq/*.md")
    with pytest.raises(SourceError, match="matched none of the 199 files"):
        load(docs_zip, "en/nothing/*.md")
    with pytest.raises(SourceError, match="glob is empty"):
        load(docs_zip, " ")


def test_settings_supply_what_is_not_given(docs_zip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_SOURCE", str(docs_zip))
    monkeypatch.setenv("RAG_GLOB", "en/faq/product_faq.md")
    loader = MarkdownCorpusLoader()
    assert [d.metadata["source"] for d in loader.lazy_load()] == ["en/faq/product_faq.md"]
    assert MarkdownCorpusLoader(glob="en/faq/*.md").patterns == ("en/faq/*.md",)

    from config.settings import get_settings

    settings = get_settings(max_file_bytes=123)
    loader = MarkdownCorpusLoader.from_settings(settings, glob=ALL_GLOB, progress=False)
    assert (loader.source, loader.patterns, loader.max_file_bytes) == (str(docs_zip), (ALL_GLOB,), 123)
    assert loader.cache_dir == settings.cache_dir


def test_loading_from_a_url_goes_through_the_cache(docs_server: DocsServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for _ in range(2):
        docs, loader = load(docs_server.url("docs.zip"), "en/faq/*.md", cache_dir=cache, progress=False)
        assert len(docs) == 4
        assert loader.stats.source == docs_server.url("docs.zip")
    assert docs_server.hits["/docs.zip"] == 1
    assert len(files_under(cache)) == 1
