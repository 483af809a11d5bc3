"""Retrieval quality and speed on a question set: the project's modes against the seed's pipeline.

A question set is JSONL, one `{"question": ..., "gold": ...}` a line, `gold` being a verbatim span of the
passage that answers it. A retrieved chunk is a hit when its text contains the gold span after both are
normalised the same way: markdown markup a reader does not see (`[`, `]`, `` ` ``, `*`) is dropped and runs of
whitespace become one space, because the loader renders links as their text and re-wraps nothing, while the
seed's chunks are raw markdown. Case is kept: the gold span is verbatim, and ignoring case would only hide
differences, never fix one.

Latency is what a caller of the retriever waits for (query embedding, search, documents), warm: one
untimed query first, then every question `repeat` times, its latency the median of those; p50 and p95 are
over the questions.

The seed's pipeline, the yardstick: every file split on `"# "` (`text.split("# ")`, raw markdown, no size
bound: the model truncates each piece at its window), embedded with the same model and searched by inner
product, in its own Milvus Lite database in a temporary folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.errors import ConfigError
from config.settings import MODES

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger(__name__)

SYSTEMS = ("baseline", *MODES)
LABELS = {"baseline": 'seed ("# " split, dense)', "dense": "dense", "hybrid": "hybrid"}

HIT_RULE = (
    "a retrieved chunk contains the gold span, both with [ ] ` * removed and whitespace collapsed; case-sensitive"
)
_MARKUP = re.compile(r"[\[\]`*]")
_SPACE = re.compile(r"\s+")

Search = Callable[[str], list[str]]


def hybrid_label(weights: Sequence[float]) -> str:
    """E.g. `hybrid RRF 2 dense + 1 BM25`: the lists the fusion used, with their weights."""
    parts = [f"{w:g} {n}" for w, n in zip(weights, ("dense", "BM25"), strict=True) if w > 0]
    return "hybrid RRF " + " + ".join(parts)


@dataclass(frozen=True)
class Question:
    question: str
    gold: str
    id: str = ""
    english: str | None = None  # dev_multilingual.jsonl: the English version, the oracle rewrite
    query: str | None = None  # what is searched, when a rewrite gave it (else the question)

    @property
    def searched(self) -> str:
        return self.query or self.question


@dataclass
class SystemResult:
    """One system's numbers; `ranks[i]` is the 1-based rank of the first hit for question i (None: no hit)."""

    name: str
    k: int
    hits: dict[str, float]
    mrr: float
    p50_ms: float
    p95_ms: float
    ranks: list[int | None] = field(default_factory=list)
    served_mode: str | None = None
    chunks: int | None = None
    label: str | None = None

    def row(self) -> dict[str, Any]:
        return {**self.hits, f"mrr@{self.k}": self.mrr, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms}


def normalize(text: str) -> str:
    return _SPACE.sub(" ", _MARKUP.sub("", text)).strip()


def is_hit(gold: str, text: str) -> bool:
    return normalize(gold) in normalize(text)


def cutoffs(k: int) -> list[int]:
    """The hit@N columns for a search depth k: 1, 3 and 5 where they fit, and k itself."""
    return sorted({n for n in (1, 3, 5) if n <= k} | {k})


def load_questions(path: Path) -> list[Question]:
    """The question set, or one `ConfigError` naming the file and line that is wrong."""
    fix = 'one JSON object a line: {"question": "...", "gold": "a verbatim span of the answer passage"}'
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"the question set {path} does not exist", "pass one with --questions FILE.jsonl") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the question set {path} ({exc})", fix) from None
    questions: list[Question] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{path}, line {number}: not JSON ({exc.args[0]})", fix) from None
        if not isinstance(item, dict) or not all(
            isinstance(item.get(key), str) and item[key].strip() for key in ("question", "gold")
        ):
            raise ConfigError(f"{path}, line {number}: needs non-empty strings 'question' and 'gold'", fix)
        english = item.get("english") if isinstance(item.get("english"), str) else None
        questions.append(Question(item["question"], item["gold"], str(item.get("id", number)), english))
    if not questions:
        raise ConfigError(f"the question set {path} has no questions", fix)
    return questions


def measure(name: str, search: Search, questions: Sequence[Question], *, k: int, repeat: int = 3) -> SystemResult:
    """Rank of the first hit per question within the top k, and warm per-question latency."""
    search(questions[0].searched)  # warm: model session, collection load, first-call caches
    ranks: list[int | None] = []
    latencies: list[float] = []
    for q in questions:
        times = []
        texts: list[str] = []
        for _ in range(max(1, repeat)):
            started = time.perf_counter()
            texts = search(q.searched)
            times.append(time.perf_counter() - started)
        latencies.append(statistics.median(times) * 1000)
        ranks.append(next((i for i, text in enumerate(texts[:k], start=1) if is_hit(q.gold, text)), None))
    n = len(questions)
    hits = {f"hit@{c}": sum(1 for r in ranks if r is not None and r <= c) / n for c in cutoffs(k)}
    mrr = sum(1 / r for r in ranks if r is not None) / n
    return SystemResult(name, k, hits, mrr, percentile(latencies, 50), percentile(latencies, 95), ranks)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default): the one p50/p95 of every figure the README
    shows, from this harness and from scripts/benchmark.py alike."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ---- the systems ------------------------------------------------------------------------------------------


def eval_settings(settings: Settings, *, data_dir: Path | None, source: str, patterns: Sequence[str]) -> Settings:
    """The user's settings pointed at the evaluation's own index: one collection per corpus selection.

    The user's index is left alone (it may hold only the FAQ, and evaluating must not change what `ask.py`
    answers from). Re-running is cheap: the ingest is incremental, so only changed files are embedded again.
    """
    import hashlib

    selection = hashlib.sha256("\0".join([source, *patterns]).encode()).hexdigest()[:10]
    update: dict[str, Any] = {"collection": f"eval_{selection}"}
    if settings.uses_lite:
        update["data_dir_override"] = data_dir or settings.data_dir / "evaluation"
    copy = settings.model_copy(update=update)
    for cached in ("data_dir", "cache_dir"):  # cached properties copied from the original
        copy.__dict__.pop(cached, None)
    return copy


def project_search(settings: Settings, store: Any, mode: str, k: int) -> tuple[Search, Callable[[], str | None]]:
    """A search over the project's index in `mode`, and which mode served the last search (hybrid asked of a
    collection without BM25 is served dense)."""
    from retrieval.retriever import build_retriever

    retriever = build_retriever(settings, k=k, mode=mode, store=store)  # type: ignore[arg-type]
    served: list[str | None] = [None]

    def search(question: str) -> list[str]:
        docs = retriever.invoke(question)
        if docs:
            served[0] = docs[0].metadata.get("mode")
        return [d.page_content for d in docs]

    return search, lambda: served[0]


class SeedBaseline:
    """The seed's index (`evaluation.seed_pipeline`: its chunks and collection) embedded with the project's model
    runtime, in a temporary Milvus Lite database; a context manager that removes it."""

    def __init__(self, settings: Settings, source: str, patterns: Sequence[str], *, progress: bool = False) -> None:
        self.settings = settings
        self.source = source
        self.patterns = list(patterns)
        self.progress = progress
        self.chunks = 0

    def __enter__(self) -> SeedBaseline:
        from pymilvus import MilvusClient

        from embeddings import build_embeddings
        from evaluation import seed_pipeline

        self._tmp = tempfile.TemporaryDirectory(prefix="seed-baseline-")
        self.db = str(Path(self._tmp.name) / "milvus.db")
        texts, _ = seed_pipeline.seed_texts(
            self.source,
            self.patterns,
            cache_dir=self.settings.cache_dir,
            download_timeout=self.settings.download_timeout,
        )
        self.embeddings = build_embeddings(self.settings, show_progress=self.progress)
        self.client = MilvusClient(uri=self.db)
        seed_pipeline.create_index(self.client, texts, self.embeddings.embed_documents(texts))
        self.client.flush(seed_pipeline.COLLECTION)
        self.chunks = len(texts)
        return self

    def search_function(self, k: int) -> Search:
        from evaluation import seed_pipeline

        def search(question: str) -> list[str]:
            return seed_pipeline.search_index(self.client, self.embeddings.embed_query(question), k)

        return search

    def __exit__(self, *exc: object) -> None:
        try:
            self.client.close()
        finally:
            try:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.db)
            except ImportError:
                pass
            self._tmp.cleanup()


# ---- the run ----------------------------------------------------------------------------------------------


@dataclass
class Report:
    questions_file: str
    n_questions: int
    source: str
    glob: list[str]
    k: int
    repeat: int
    hit_rule: str
    results: dict[str, SystemResult]
    questions: list[Question]
    index: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "questions_file": self.questions_file,
            "n_questions": self.n_questions,
            "source": self.source,
            "glob": self.glob,
            "k": self.k,
            "repeat": self.repeat,
            "hit_rule": self.hit_rule,
            "latency": "warm, per question the median of `repeat` runs; p50/p95 over questions, milliseconds",
            "score_note": "hybrid scores are RRF rank scores, not confidences",
            "index": self.index,
            "systems": {
                name: {
                    **r.row(),
                    "label": r.label or LABELS.get(name, name),
                    "served_mode": r.served_mode,
                    "chunks": r.chunks,
                }
                for name, r in self.results.items()
            },
            "per_question": [
                {"id": q.id, "question": q.question, **{name: r.ranks[i] for name, r in self.results.items()}}
                for i, q in enumerate(self.questions)
            ],
        }

    def table(self) -> str:
        """The numbers as a fixed-width table, one row per system."""
        columns = [*(f"hit@{c}" for c in cutoffs(self.k)), f"mrr@{self.k}", "p50_ms", "p95_ms"]
        width = max(len(r.label or LABELS.get(n, n)) for n, r in self.results.items()) + 2
        lines = [" " * width + "".join(f"{c:>9}" for c in columns)]
        for name, result in self.results.items():
            row = result.row()
            cells = "".join(
                f"{row[c]:>9.1f}" if c.endswith("_ms") else f"{row[c]:>9.2f}" for c in columns
            )
            lines.append(f"{result.label or LABELS.get(name, name):<{width}}" + cells)
        return "\n".join(lines)


def run_evaluation(
    settings: Settings,
    questions_file: Path,
    *,
    source: str | None = None,
    glob: Sequence[str] | str | None = None,
    systems: Sequence[str] = SYSTEMS,
    k: int = 5,
    repeat: int = 3,
    data_dir: Path | None = None,
    progress: bool = False,
    rewrite: str = "none",
) -> Report:
    """Index `source` (default the settings' source; every file unless `glob`) and measure each system.

    `rewrite` decides what is searched for each question (evaluation.rewrite): `none` the question as asked,
    `oracle` its `english` field (the upper bound of any rewrite), `model` the chain's own rewrite step."""
    from index.pipeline import run_ingest
    from index.store import release
    from loaders.sources import ALL_GLOB, as_patterns

    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}", "pass --k 5")
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise ConfigError(f"unknown systems {unknown or systems}", "choose from: " + ", ".join(SYSTEMS))
    from evaluation.rewrite import search_queries

    asked = load_questions(questions_file)
    queries = search_queries(asked, rewrite, settings)
    questions = [dataclasses.replace(q, query=query) for q, query in zip(asked, queries, strict=True)]
    source = source or settings.source
    patterns = list(as_patterns(glob or ALL_GLOB))
    results: dict[str, SystemResult] = {}
    index: dict[str, Any] = {}
    project = [s for s in systems if s != "baseline"]
    if project:
        target = eval_settings(settings, data_dir=data_dir, source=source, patterns=patterns)
        ingest = run_ingest(target, source=source, glob=patterns, progress=progress)
        chunks = ingest.chunks_added + ingest.chunks_updated + ingest.chunks_unchanged
        index = {"collection": target.collection, "chunks": chunks, "ingest": ingest.summary()}
        if target.uses_lite:
            index["data_dir"] = str(target.data_dir)
        from retrieval.retriever import open_store

        store = open_store(target)
        try:
            for mode in project:
                search, served = project_search(target, store, mode, k)
                result = measure(mode, search, questions, k=k, repeat=repeat)
                result.served_mode, result.chunks = served(), chunks
                if mode == "hybrid" and result.served_mode == "hybrid":
                    result.label = hybrid_label(target.hybrid_weight_pair)
                if target.reranker:
                    result.label = f"{result.label or mode} + rerank {target.reranker}"
                results[mode] = result
        finally:
            release(target, store.client)
    if "baseline" in systems:
        with SeedBaseline(settings, source, patterns, progress=progress) as seed:
            result = measure("baseline", seed.search_function(k), questions, k=k, repeat=repeat)
            result.served_mode, result.chunks = "dense", seed.chunks
            results["baseline"] = result
    ordered = {name: results[name] for name in SYSTEMS if name in results}
    return Report(
        str(questions_file), len(questions), source, patterns, k, repeat, HIT_RULE, ordered, questions, index
    )


# ---- output -----------------------------------------------------------------------------------------------


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """`evaluation.json` and `evaluation.png` in `out_dir` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "evaluation.json"
    png_path = out_dir / "evaluation.png"
    json_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot(report, png_path)
    return json_path, png_path


def plot(report: Report, path: Path) -> None:
    """Grouped bars: quality metrics on the left (0-1), latency on the right (ms)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.results)
    quality = [*(f"hit@{c}" for c in cutoffs(report.k)), f"mrr@{report.k}"]
    speed = ["p50_ms", "p95_ms"]
    colors = {"baseline": "#9e9e9e", "dense": "#1f77b4", "hybrid": "#ff7f0e"}
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [len(quality), len(speed) + 0.6]}
    )
    width = 0.8 / max(1, len(names))
    for axis, metrics in ((left, quality), (right, speed)):
        for i, name in enumerate(names):
            result = report.results[name]
            row = result.row()
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(metrics))]
            values = [row[m] for m in metrics]
            label = result.label or LABELS.get(name, name)
            bars = axis.bar(xs, values, width, label=label, color=colors.get(name))
            fmt = ("{:.1f}" if max(values) < 10 else "{:.0f}") if axis is right else "{:.2f}"
            axis.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=7, padding=2)
        axis.set_xticks(range(len(metrics)), [m.replace("_ms", "") for m in metrics])
        axis.spines[["top", "right"]].set_visible(False)
    left.set_ylim(0, 1.08)
    left.set_ylabel("fraction of questions")
    left.set_title(f"Retrieval quality ({report.n_questions} questions, top {report.k})")
    right.set_ylabel("milliseconds")
    right.set_title("Warm retrieval latency")
    right.set_ylim(0, max(r.p95_ms for r in report.results.values()) * 1.2 or 1)
    left.legend(loc="upper left", fontsize=8, frameon=False)
    fig.suptitle(f"{Path(report.questions_file).name} over {_corpus_label(report)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _corpus_label(report: Report) -> str:
    chunks = report.index.get("chunks")
    where = ", ".join(report.glob)
    return f"{where} ({chunks} chunks)" if chunks else where
