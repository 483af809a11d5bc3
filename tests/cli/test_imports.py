"""What a quick question costs at start-up: `ask.py --retrieve-only` loads only its own path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NEVER = ("matplotlib", "sqlalchemy", "sentence_transformers", "torch", "sklearn", "fastapi", "uvicorn", "openai")


def test_retrieve_only_imports_no_plotting_orm_torch_server_or_model_client(faq_index: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(faq_index))
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / "scripts" / "ask.py"), "--retrieve-only",
         "How is data stored in milvus?"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Milvus deals with two types of data" in result.stdout
    imported = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\|\s+(\S+)\s*$", result.stderr, re.M)}
    assert "pymilvus" in imported  # the measurement sees real imports
    assert sorted(set(NEVER) & imported) == []
