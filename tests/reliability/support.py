"""What the reliability tests share: running the scripts as a user does, and reading what the index holds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ASK = REPO / "scripts" / "ask.py"
INGEST = REPO / "scripts" / "ingest.py"
SEED = "How is data stored in milvus?"
GOLD = "Milvus deals with two types of data"
COLLECTION = "my_rag_collection"
TEXT_FIELD_BYTES = 65535


def run(script: Path, *args: str | bytes, stdin: bytes | None = None, timeout: float = 300) -> Result:
    """The script in its own process (Milvus Lite is one process per folder), with the test's environment."""
    done = subprocess.run(
        [sys.executable, str(script), *args], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    return Result(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


def ingest(*args: str, timeout: float = 300) -> Result:
    return run(INGEST, "--no-progress", *args, timeout=timeout)


def ask(*args: str | bytes, stdin: bytes | None = None, timeout: float = 120) -> Result:
    return run(ASK, *args, stdin=stdin, timeout=timeout)


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def __repr__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-2000:]}\n--- stderr\n{self.stderr[-3000:]}"

    def error_line(self) -> str:
        """The one line a failure prints: exactly one `error: ` line on stderr and no traceback."""
        assert "Traceback" not in self.stderr, self
        errors = [line for line in self.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, self
        return errors[0]

    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("WARNING: ")]


def seed_answered(result: Result) -> bool:
    """`ask.py --retrieve-only --json` found the passage that answers the seed question."""
    assert result.returncode == 0, result
    payload = json.loads(result.stdout)
    return any(GOLD in s["text"] for s in payload["sources"])


def copy_index(pristine: Path, dest: Path) -> Path:
    shutil.copytree(pristine, dest)
    return dest


def collection_dir(data: Path) -> Path:
    return data / "milvus.db" / "collections" / COLLECTION


def halve(path: Path) -> None:
    """Cut a file to half its length, as a crash or a full disk mid-write leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def rows(data: Path, fields: tuple[str, ...] = ("pk", "source", "text")) -> list[dict[str, Any]]:
    """Every row of the collection in `data`, read in this process and released afterwards."""
    from config.settings import get_settings
    from index.store import open_client, release

    settings = get_settings(data_dir_override=data)
    client = open_client(settings)
    try:
        client.load_collection(COLLECTION)
        return client.query(COLLECTION, filter="", output_fields=list(fields), limit=16384)
    finally:
        release(settings, client)


def no_duplicates(found: list[dict[str, Any]]) -> bool:
    return len(found) == len({r["pk"] for r in found})


def record(data: Path) -> dict[str, Any]:
    return json.loads((data / f"ingest-record-{COLLECTION}.json").read_text())


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
    """Poll a condition another process brings about (not a sleep standing in for it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
