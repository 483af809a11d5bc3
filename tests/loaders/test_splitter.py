"""The splitter: sections, headings, code fences, the token window, overlap, ids, on real and small docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_text_splitters import TextSplitter

from embeddings.minilm import count_tokens, minilm_tokenizer
from embeddings.model_files import MINILM_MAX_TOKENS
from loaders.markdown import MarkdownCorpusLoader
from loaders.mdsyntax import heading
from loaders.sources import ALL_GLOB
from loaders.splitter import MarkdownSplitter, chunk_id, sections

FENCE_LINE = re.compile(r"^\s*(```|~~~)")


def load(docs_zip: Path, glob: str) -> list[Document]:
    loader = MarkdownCorpusLoader(
        docs_zip, glob, cache_dir=Path("unused"), max_file_bytes=2_000_000, download_timeout=5.0
    )
    return loader.load()


def minilm(max_tokens: int = MINILM_MAX_TOKENS, **kwargs: object) -> MarkdownSplitter:
    """The splitter as the ingest builds it: MiniLM's own tokenizer and window."""
    return MarkdownSplitter.from_tokenizer(minilm_tokenizer(), max_tokens, **kwargs)


@pytest.fixture(scope="module")
def splitter() -> MarkdownSplitter:
    return minilm()


@pytest.fixture(scope="module")
def faq_chunks(docs_zip: Path, splitter: MarkdownSplitter) -> list[Document]:
    return splitter.split_documents(load(docs_zip, "en/faq/*.md"))


@pytest.fixture(scope="module")
def all_chunks(docs_zip: Path, splitter: MarkdownSplitter) -> list[Document]:
    return splitter.split_documents(load(docs_zip, ALL_GLOB))


def doc(text: str, title: str = "Guide", source: str = "en/guide.md") -> Document:
    return Document(page_content=text, metadata={"source": source, "title": title, "content_hash": "h" * 64})


def bodies(chunks: list[Document]) -> list[str]:
    return [c.page_content.split("\n\n", 1)[1] for c in chunks]


# ---- the real FAQ ----------------------------------------------------------------------------------------


def test_faq_answer_stays_with_its_question(faq_chunks: list[Document]) -> None:
    hits = [c for c in faq_chunks if "Milvus deals with two types of data" in c.page_content]
    assert len(hits) == 1
    chunk = hits[0]
    assert chunk.metadata["heading"] == "Product FAQ > Where does Milvus store data?"
    assert chunk.page_content.startswith("Product FAQ > Where does Milvus store data?\n\nMilvus deals with")

    flush = [c for c in faq_chunks if c.metadata["heading"].endswith("How does Milvus flush data?")]
    assert len(flush) == 1
    assert "If `flush()` is called, the data node is forced to write" in flush[0].page_content


def test_faq_chunk_metadata(faq_chunks: list[Document]) -> None:
    by_source: dict[str, list[Document]] = {}
    for c in faq_chunks:
        by_source.setdefault(c.metadata["source"], []).append(c)
    assert len(by_source) == 4
    for source, chunks in by_source.items():
        assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
        assert {c.metadata["n_chunks"] for c in chunks} == {len(chunks)}
        for c in chunks:
            assert c.metadata["title"] and len(c.metadata["content_hash"]) == 64
            assert c.id == chunk_id(source, c.metadata["content_hash"], c.metadata["chunk_index"])
            assert len(c.id) == 32
            assert c.page_content.startswith(c.metadata["heading"] + "\n\n")
            assert not c.metadata["heading"].startswith("Product FAQ > Product FAQ")


# ---- the whole corpus ------------------------------------------------------------------------------------


def test_every_chunk_fits_the_embedding_window(all_chunks: list[Document]) -> None:
    sizes = [count_tokens(c.page_content) for c in all_chunks]
    assert max(sizes) <= MINILM_MAX_TOKENS
    assert len({c.metadata["source"] for c in all_chunks}) >= 190


def test_no_empty_or_heading_only_chunks(all_chunks: list[Document]) -> None:
    for c in all_chunks:
        heading_path, _, body = c.page_content.partition("\n\n")
        assert heading_path == c.metadata["heading"]
        assert re.search(r"\w", re.sub(r"<[^>]*>", "", body)), c.page_content
        assert not re.fullmatch(r"\s*#+ [^\n]*\s*", body), c.page_content


def test_chunks_never_cut_inside_a_code_fence(all_chunks: list[Document]) -> None:
    for c in all_chunks:
        fences = [line for line in c.page_content.split("\n") if FENCE_LINE.match(line)]
        assert len(fences) % 2 == 0, c.page_content
        # A stray markdown heading marker at the start of a body means a cut at a `#` inside code.
        assert not re.match(r"#{1,6}\s*$", c.page_content.split("\n\n", 1)[1].split("\n")[0])


def test_ids_are_unique_and_deterministic(docs_zip: Path, all_chunks: list[Document]) -> None:
    assert len({c.id for c in all_chunks}) == len(all_chunks)
    again = minilm().split_documents(load(docs_zip, ALL_GLOB))
    assert [(c.id, c.page_content, c.metadata) for c in again] == [
        (c.id, c.page_content, c.metadata) for c in all_chunks
    ]


def test_batch_counting_gives_the_same_chunks(docs_zip: Path, faq_chunks: list[Document]) -> None:
    """Counting many texts per tokenizer call is a speed-up only: one text per call chunks the same."""
    one_by_one = MarkdownSplitter(MINILM_MAX_TOKENS, length_function=count_tokens, additive=True)
    again = one_by_one.split_documents(load(docs_zip, "en/faq/*.md"))
    assert [(c.id, c.page_content) for c in again] == [(c.id, c.page_content) for c in faq_chunks]


# ---- headings and code fences ----------------------------------------------------------------------------

FENCED = """# Guide

## Install

Run this:

{fence}bash
# install the client
pip install pymilvus
### not a heading either
{fence}

After the block.

## Use

Call it.
"""


@pytest.mark.parametrize("fence", ["```", "~~~"])
def test_hash_lines_inside_fences_are_not_headings(splitter: MarkdownSplitter, fence: str) -> None:
    text = FENCED.format(fence=fence)
    chunks = splitter.split_documents([doc(text)])
    assert [c.metadata["heading"] for c in chunks] == ["Guide > Install", "Guide > Use"]
    install = chunks[0].page_content
    assert (
        f"{fence}bash\n# install the client\npip install pymilvus\n### not a heading either\n{fence}"
        in install
    )
    assert install.endswith("After the block.")
    assert not any(re.fullmatch(r"#+", line.strip()) for c in chunks for line in c.page_content.split("\n"))


def test_heading_parsing_rules() -> None:
    assert heading("#### How?").level == 4  # type: ignore[union-attr]
    assert heading("  ## Indented ##").text == "Indented"  # type: ignore[union-attr]
    assert heading("    # four spaces is code") is None
    assert heading("#hashtag") is None
    assert heading("#######  seven") is None


def test_heading_path_nests_and_pops(splitter: MarkdownSplitter) -> None:
    text = "intro\n\n# Guide\n\n## A\n\na\n\n### A1\n\na1\n\n## B\n\nb\n\n# Other\n\no\n"
    chunks = splitter.split_documents([doc(text)])
    assert [c.metadata["heading"] for c in chunks] == [
        "Guide",
        "Guide > A",
        "Guide > A > A1",
        "Guide > B",
        "Guide > Other",
    ]
    assert chunks[0].page_content == "Guide\n\nintro"


def test_sections_without_text_give_no_chunks(splitter: MarkdownSplitter) -> None:
    text = (
        "# Guide\n\n## Empty\n\n## Only markup\n\n<div class='x'>\n</div>\n\n"
        "## Real\n\nText.\n\n## Trailing\n"
    )
    assert [s.path for s in sections(text, "Guide")] == [("Guide", "Real")]
    chunks = splitter.split_documents([doc(text)])
    assert [c.page_content for c in chunks] == ["Guide > Real\n\nText."]


def test_navigation_sections_are_left_out(splitter: MarkdownSplitter) -> None:
    text = (
        "# Install Milvus Offline\n\nDownload the images first.\n\n"
        "## What's next\n\n- Learn how to scale a cluster.\n- Learn about monitoring.\n\n"
        "## See also:\n\n- Upgrade guide\n"
    )
    page = doc(text, title="Install Milvus Offline")
    chunks = splitter.split_documents([page])
    assert [c.metadata["heading"] for c in chunks] == ["Install Milvus Offline"]
    kept = minilm(skip_headings=None).split_documents([page])
    assert [c.metadata["heading"] for c in kept][1:] == [
        "Install Milvus Offline > What's next",
        "Install Milvus Offline > See also:",
    ]
    # a page that is itself about next steps keeps its text
    assert minilm().split_text("# Next steps\n\nPlan the upgrade.") == ["Next steps\n\nPlan the upgrade."]


def test_document_without_title_or_headings(splitter: MarkdownSplitter) -> None:
    assert splitter.split_text("just text") == ["just text"]
    assert splitter.split_text("") == []


# ---- the token window ------------------------------------------------------------------------------------


def sentence(i: int) -> str:
    return f"Sentence number {i} explains how segment {i} is sealed, flushed and indexed by the data node."


def test_long_section_is_cut_at_paragraphs_with_overlap() -> None:
    splitter = minilm(128, overlap_tokens=24)
    paragraphs = [" ".join(sentence(10 * p + s) for s in range(3)) for p in range(8)]
    text = "# Guide\n\n## Long\n\n" + "\n\n".join(paragraphs)
    chunks = splitter.split_documents([doc(text)])
    assert len(chunks) > 3
    for c in chunks:
        assert count_tokens(c.page_content) <= 128
        assert c.metadata["heading"] == "Guide > Long"
    parts = bodies(chunks)
    for before, after in zip(parts, parts[1:], strict=False):
        first_sentence = re.split(r"(?<=\.)\s+", after)[0]
        assert first_sentence in before  # the next chunk starts with the end of the previous one
        assert len(first_sentence) < len(before)
    every_sentence = {sentence(10 * p + s) for p in range(8) for s in range(3)}
    assert every_sentence == {s for s in every_sentence if any(s in part for part in parts)}


def test_long_sentence_and_long_word_are_cut(splitter: MarkdownSplitter) -> None:
    words = " ".join(f"word{i}" for i in range(600))
    blob = "x" * 3000
    chunks = splitter.split_documents([doc(f"# Guide\n\n{words}\n\n{blob}")])
    assert all(count_tokens(c.page_content) <= MINILM_MAX_TOKENS for c in chunks)
    joined = " ".join(bodies(chunks))
    assert all(f"word{i}" in joined for i in range(600))
    assert joined.replace(" ", "").count("x") >= 3000


def test_long_code_block_is_split_by_lines_and_refenced(splitter: MarkdownSplitter) -> None:
    lines = [f"    client.insert(collection_name='demo', data=rows[{i}])  # batch {i}" for i in range(120)]
    text = "# Guide\n\n## Insert\n\nInsert in batches:\n\n```python\n" + "\n".join(lines) + "\n```\n"
    chunks = splitter.split_documents([doc(text)])
    assert len(chunks) >= 4
    assert chunks[0].page_content.startswith("Guide > Insert\n\nInsert in batches:\n\n```python\n")
    code_lines: list[str] = []
    for c in chunks:
        assert count_tokens(c.page_content) <= MINILM_MAX_TOKENS
        assert c.metadata["heading"] == "Guide > Insert"
        body = c.page_content.split("\n\n", 1)[1]
        block = body[body.index("```python") :]
        assert block.startswith("```python\n") and block.endswith("\n```")
        code_lines += block.split("\n")[1:-1]
    assert code_lines == lines  # every line once, in order, none cut


def test_unclosed_fence_is_closed_in_every_piece(splitter: MarkdownSplitter) -> None:
    text = "# Guide\n\n```\n" + "\n".join(f"echo step {i} of the migration script" for i in range(150))
    chunks = splitter.split_documents([doc(text)])
    assert len(chunks) > 1
    for c in chunks:
        assert c.page_content.endswith("\n```") and "\n```\n" in c.page_content


def test_long_table_keeps_its_header_in_every_piece(splitter: MarkdownSplitter) -> None:
    rows = [
        f"| param{i} | Sets how often node {i} flushes its growing segments to storage. |" for i in range(60)
    ]
    text = "# Guide\n\n## Params\n\n| Name | Description |\n|-|-|\n" + "\n".join(rows)
    chunks = splitter.split_documents([doc(text)])
    assert len(chunks) > 2
    seen = []
    for c in chunks:
        body = c.page_content.split("\n\n", 1)[1]
        assert body.startswith("| Name | Description |\n|-|-|\n")
        seen += body.split("\n")[2:]
    assert seen == rows


# ---- determinism and the TextSplitter interface ----------------------------------------------------------


def test_same_input_same_chunks_and_ids() -> None:
    text = "# Guide\n\n" + "\n\n".join(sentence(i) * 3 for i in range(20))
    first = minilm().split_documents([doc(text)])
    second = minilm().split_documents([doc(text)])
    assert [(c.id, c.page_content) for c in first] == [(c.id, c.page_content) for c in second]
    changed = Document(page_content=text, metadata={**doc(text).metadata, "content_hash": "g" * 64})
    assert {c.id for c in minilm().split_documents([changed])}.isdisjoint({c.id for c in first})


def test_is_a_langchain_text_splitter(splitter: MarkdownSplitter) -> None:
    assert isinstance(splitter, TextSplitter)
    docs = splitter.transform_documents([doc("# Guide\n\n## A\n\nalpha\n\n## B\n\nbeta")])
    assert [d.page_content for d in docs] == ["Guide > A\n\nalpha", "Guide > B\n\nbeta"]
    created = splitter.create_documents(["# T\n\ntext"], [{"source": "s.md", "title": "T"}])
    assert created[0].page_content == "T\n\ntext" and created[0].metadata["source"] == "s.md"
    assert created[0].id and created[0].metadata["n_chunks"] == 1


def test_injected_length_function_and_window() -> None:
    text = (
        "# Guide\n\n" + "\n\n".join(sentence(i) * 4 for i in range(10)) + "\n\n```\n" + "x = 1\n" * 80 + "```"
    )
    by_chars = MarkdownSplitter(max_tokens=300, length_function=len)
    chunks = by_chars.split_documents([doc(text)])
    assert chunks and all(len(c.page_content) <= 300 for c in chunks)

    def words(t: str) -> int:  # treated as non-additive: every finished chunk is measured again
        return len(t.split()) + (5 if t else 0)

    chunks = MarkdownSplitter(max_tokens=60, overlap_tokens=8, length_function=words).split_documents(
        [doc(text)]
    )
    assert chunks and all(words(c.page_content) <= 60 for c in chunks)


def test_overlap_can_be_turned_off() -> None:
    text = "# Guide\n\n" + " ".join(sentence(i) for i in range(40))
    chunks = minilm(96, overlap_tokens=0).split_documents([doc(text)])
    parts = bodies(chunks)
    assert " ".join(parts) == " ".join(sentence(i) for i in range(40))
