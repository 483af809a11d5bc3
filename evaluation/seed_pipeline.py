"""The seed's pipeline, kept as the yardstick the benchmark and the evaluation compare against.

What the project started from: markdown files split on "# " (raw markdown, no size bound: the model
truncates each piece at its window), embedded with sentence-transformers all-MiniLM-L6-v2, written with
pymilvus directly (no incremental logic: every run embeds everything again), searched by dense inner
product. Not used by the application. The files are picked and decoded as the project picks them, so that
both sides of a comparison index the same files; `evaluation.quality.SeedBaseline` uses the same chunks and
collection, embedded with the project's model runtime.

    python -m evaluation.seed_pipeline ingest --source ZIP --db DIR [--glob G]
    python -m evaluation.seed_pipeline search --db DIR "question" [--k 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLLECTION = "seed_collection"
INSERT_BATCH = 1000


def split(text: str) -> list[str]:
    """The seed's one splitting rule."""
    return text.split("# ")


def seed_texts(
    source: str | Path,
    glob: str | Sequence[str] = "en/faq/*.md",
    *,
    cache_dir: Path | None = None,
    download_timeout: float = 30.0,
) -> tuple[list[str], int]:
    """The seed's chunks of the files `glob` picks from `source` (folder, zip or URL), and those files' bytes."""
    from loaders.markdown import decode_text
    from loaders.sources import open_corpus, select

    texts: list[str] = []
    size = 0
    with open_corpus(source, cache_dir=cache_dir, download_timeout=download_timeout, progress=False) as corpus:
        for path in select(corpus, glob):
            data = corpus.read(path)
            text = decode_text(data)
            if isinstance(text, str):
                size += len(data)
                texts.extend(split(text))
    return texts, size


def create_index(client: Any, texts: list[str], vectors: list[list[float]]) -> None:
    """The seed's collection, as its quick-start creates it (`id`, `vector`, `text`; inner product)."""
    if client.has_collection(COLLECTION):
        client.drop_collection(COLLECTION)
    client.create_collection(COLLECTION, dimension=len(vectors[0]), metric_type="IP", consistency_level="Strong")
    rows = [{"id": i, "vector": v, "text": t} for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
    for start in range(0, len(rows), INSERT_BATCH):
        client.insert(COLLECTION, rows[start : start + INSERT_BATCH])


def search_index(client: Any, vector: list[float], k: int) -> list[str]:
    hits = client.search(
        COLLECTION, data=[vector], limit=k, search_params={"metric_type": "IP"}, output_fields=["text"]
    )
    return [hit["entity"]["text"] for hit in hits[0]]


def load_model():  # noqa: ANN201 - sentence_transformers is imported lazily on purpose
    from sentence_transformers import SentenceTransformer

    from embeddings.model_files import minilm_dir

    return SentenceTransformer(str(minilm_dir()), device="cpu")


def encode(model, texts: list[str]) -> list[list[float]]:  # noqa: ANN001
    return model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False).tolist()


def ingest(source: str, db: Path, glob: str | Sequence[str]) -> dict[str, float]:
    from pymilvus import MilvusClient

    started = time.perf_counter()
    texts, size = seed_texts(source, glob)
    model = load_model()
    vectors = encode(model, texts)
    db.mkdir(parents=True, exist_ok=True)
    create_index(MilvusClient(uri=str(db / "milvus.db")), texts, vectors)
    return {"seconds": time.perf_counter() - started, "chunks": len(texts), "bytes": size}


def search(db: Path, questions: list[str], k: int = 3) -> list[list[str]]:
    from pymilvus import MilvusClient

    model = load_model()
    client = MilvusClient(uri=str(db / "milvus.db"))
    client.load_collection(COLLECTION)
    return [search_index(client, encode(model, [question])[0], k) for question in questions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_ingest = sub.add_parser("ingest", help="index a docs zip the seed's way")
    p_ingest.add_argument("--source", required=True, help="the Milvus docs: folder, .zip or URL of a zip")
    p_ingest.add_argument("--db", required=True, type=Path, help="folder for the Milvus Lite database")
    p_ingest.add_argument(
        "--glob", default="en/faq/*.md", help="files to index, e.g. '**/*.{md,json}' (default en/faq/*.md)"
    )
    p_search = sub.add_parser("search", help="print the top-k texts for a question as JSON")
    p_search.add_argument("--db", required=True, type=Path)
    p_search.add_argument("--k", type=int, default=3)
    p_search.add_argument("question")
    args = parser.parse_args(argv)
    if args.command == "ingest":
        print(json.dumps(ingest(args.source, args.db, args.glob)))
    else:
        print(json.dumps(search(args.db, [args.question], args.k)[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
