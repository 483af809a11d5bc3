"""Shared, session-wide embedding fixtures: the ONNX model is exported once into the session model cache, and
the sentence-transformers reference (the 5-8 s torch import) is loaded once."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from embeddings.factory import load_embedding_function
from embeddings.minilm import MiniLMOnnxEmbeddingFunction, count_tokens
from embeddings.model_files import MINILM_MAX_TOKENS


@pytest.fixture(scope="session")
def minilm(model_cache_dir: Path) -> MiniLMOnnxEmbeddingFunction:
    return MiniLMOnnxEmbeddingFunction(cache_dir=model_cache_dir)


@pytest.fixture(scope="session")
def reference(model_cache_dir: Path) -> Any:
    """sentence-transformers on the bundled folder, through pymilvus.model (the `minilm-sentence-transformers`
    choice of the factory)."""
    return load_embedding_function("minilm-sentence-transformers", cache_dir=model_cache_dir)


def _spread(items: list[str], n: int) -> list[str]:
    """`n` items spread evenly over the list, so the picks come from many files, not the first one."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


@pytest.fixture(scope="session")
def doc_texts(docs_zip: Path) -> dict[str, list[str]]:
    """Real texts from the Milvus docs, read at test time (never copied into the repository).

    `short`: one-line paragraphs; `medium`: paragraphs of 60-200 word pieces; `long`: sections over the
    model's 256-piece window (so truncation is exercised); `questions`: the FAQ's own question headings.
    """
    short: list[str] = []
    medium: list[str] = []
    long: list[str] = []
    questions: list[str] = []
    with zipfile.ZipFile(docs_zip) as archive:
        for name in sorted(archive.namelist()):
            if not name.endswith(".md"):
                continue
            text = archive.read(name).decode("utf-8", "replace")
            if "/faq/" in name:
                questions += [m.strip() for m in re.findall(r"^#{2,4} +(.+\?)\s*$", text, flags=re.M)]
            for section in re.split(r"\n(?=#{1,6} )", text):
                section = section.strip()
                if count_tokens(section) > MINILM_MAX_TOKENS + 60:
                    long.append(section)
                for para in re.split(r"\n\s*\n", section):
                    para = para.strip()
                    if not para or para.startswith(("<", "```", "|")):
                        continue
                    tokens = count_tokens(para)
                    if 6 <= tokens <= 32:
                        short.append(para)
                    elif 60 <= tokens <= 200:
                        medium.append(para)
    texts = {
        "short": _spread(short, 14),
        "medium": _spread(medium, 14),
        "long": _spread(long, 12),
        "questions": _spread(questions, 12),
    }
    assert all(len(v) >= 10 for v in texts.values()), {k: len(v) for k, v in texts.items()}
    return texts
