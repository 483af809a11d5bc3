"""What the evaluation searches for each question: the question as asked, its English version from the question
set (what a perfect rewrite would give: the upper bound), or the chain's own rewrite step through the model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from config.errors import ConfigError

if TYPE_CHECKING:
    from config.settings import Settings


class Asked(Protocol):
    id: str
    question: str
    english: str | None

REWRITES: dict[str, str] = {
    "none": "the question as asked (the floor for questions in other languages)",
    "oracle": "the question set's `english` field (the upper bound of any rewrite)",
    "model": "the chain's rewrite step (RAG_QUERY_REWRITE=always), one DeepSeek call per question",
}


def search_queries(questions: Sequence[Asked], rewrite: str, settings: Settings) -> list[str]:
    """What the search sees for each question under `rewrite`."""
    if rewrite not in REWRITES:
        raise ConfigError(f"unknown rewrite {rewrite!r}", "use one of: " + ", ".join(REWRITES))
    if rewrite == "none":
        return [q.question for q in questions]
    if rewrite == "oracle":
        missing = [q.id for q in questions if not q.english]
        if missing:
            raise ConfigError(
                f"--rewrite oracle needs an 'english' field on every question; {len(missing)} lack it "
                f"(first: {missing[0]})",
                "use a translated set such as ../shared/eval/dev_multilingual.jsonl, or --rewrite none",
            )
        return [str(q.english) for q in questions]
    from chains import build_query_rewriter

    rewriter = build_query_rewriter(settings=settings)
    return rewriter.batch([{"question": q.question} for q in questions], config={"max_concurrency": 4})
