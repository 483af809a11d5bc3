"""What the evaluation searches for each question: the question as asked, its English version from the question
set (what a perfect rewrite would give: the upper bound), or the chain's own rewrite step through the model."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from config.errors import ConfigError

if TYPE_CHECKING:
    from config.settings import Settings
    from evaluation.quality import Question

REWRITES: dict[str, str] = {
    "none": "the question as asked (the floor for questions in other languages)",
    "oracle": "the question set's `english` field (the upper bound of any rewrite)",
    "model": "the chain's rewrite step (RAG_QUERY_REWRITE=always), one DeepSeek call per question",
}


def rewritten(questions: Sequence[Question], rewrite: str, settings: Settings) -> list[Question]:
    """The questions with `query` set to what the search sees under `rewrite`."""
    if rewrite not in REWRITES:
        raise ConfigError(f"unknown rewrite {rewrite!r}", "use one of: " + ", ".join(REWRITES))
    if rewrite == "none":
        return list(questions)
    if rewrite == "oracle":
        missing = [q.id for q in questions if not q.english]
        if missing:
            raise ConfigError(
                f"--rewrite oracle needs an 'english' field on every question; {len(missing)} lack it "
                f"(first: {missing[0]})",
                "use a translated set such as ../shared/eval/dev_multilingual.jsonl, or --rewrite none",
            )
        return [dataclasses.replace(q, query=q.english) for q in questions]
    from chains import build_query_rewriter

    rewriter = build_query_rewriter(settings=settings)
    queries = rewriter.batch([{"question": q.question} for q in questions], config={"max_concurrency": 4})
    return [dataclasses.replace(q, query=query) for q, query in zip(questions, queries, strict=True)]
