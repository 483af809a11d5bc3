"""The seed's pipeline, kept as the yardstick the benchmark and the evaluation compare against.

What the project started from: markdown files split on "# ", embedded with sentence-transformers
all-MiniLM-L6-v2, written with pymilvus directly (no incremental logic: every run embeds everything again),
searched by dense inner product. Not used by the application.

    python -m evaluation.seed_pipeline ingest --source ZIP --db DIR [--glob G]
    python -m evaluation.seed_pipeline search --db DIR "question" [--k 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from fnmatch import fnmatch
from pathlib import Path

COLLECTION = "seed_collection"


def seed_texts(zip_path: str | Path, glob: str = "en/faq/*.md") -> tuple[list[str], int]:
    """The seed's chunks (`text.split("# ")`) and the bytes of the files they came from."""
    texts: list[str] = []
    size = 0
    with zipfile.ZipFile(zip_path) as zf:
        for name in sorted(zf.namelist()):
            if name.endswith("/") or not any(fnmatch(name, g) for g in glob.split(",")):
                continue
            data = zf.read(name)
            size += len(data)
            texts.extend(data.decode("utf-8", errors="replace").split("# "))
    return texts, size


def load_model():  # noqa: ANN201 - sentence_transformers is imported lazily on purpose
    from sentence_transformers import SentenceTransformer

    from embeddings.model_files import minilm_dir

    return SentenceTransformer(str(minilm_dir()), device="cpu")


def encode(model, texts: list[str]) -> list[list[float]]:  # noqa: ANN001
    return model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False).tolist()


def ingest(zip_path: str, db: Path, glob: str) -> dict[str, float]:
    from pymilvus import MilvusClient

    started = time.perf_counter()
    texts, size = seed_texts(zip_path, glob)
    model = load_model()
    vectors = encode(model, texts)
    db.mkdir(parents=True, exist_ok=True)
    client = MilvusClient(uri=str(db / "milvus.db"))
    if client.has_collection(COLLECTION):
        client.drop_collection(COLLECTION)
    client.create_collection(COLLECTION, dimension=len(vectors[0]), metric_type="IP", consistency_level="Strong")
    client.insert(
        COLLECTION, [{"id": i, "vector": v, "text": t} for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
    )
    return {"seconds": time.perf_counter() - started, "chunks": len(texts), "bytes": size}


def search(db: Path, questions: list[str], k: int = 3) -> list[list[str]]:
    from pymilvus import MilvusClient

    model = load_model()
    client = MilvusClient(uri=str(db / "milvus.db"))
    client.load_collection(COLLECTION)
    results = []
    for question in questions:
        hits = client.search(
            COLLECTION,
            data=encode(model, [question]),
            limit=k,
            search_params={"metric_type": "IP"},
            output_fields=["text"],
        )
        results.append([hit["entity"]["text"] for hit in hits[0]])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_ingest = sub.add_parser("ingest", help="index a docs zip the seed's way")
    p_ingest.add_argument("--source", required=True, help="the Milvus docs zip")
    p_ingest.add_argument("--db", required=True, type=Path, help="folder for the Milvus Lite database")
    p_ingest.add_argument("--glob", default="en/faq/*.md", help="comma-separated globs (default en/faq/*.md)")
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
