"""The server as users start it: `python scripts/serve.py --port 0` in its own process, over a real FAQ index,
talking to the fake DeepSeek over HTTP.

One server (with a token) serves the package's tests; tests that stop or break a server start their own.
Every server process dies with pytest (PR_SET_PDEATHSIG) and after `MAX_LIFETIME` seconds at most.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.openai_server import FakeDeepSeek

REPO = Path(__file__).resolve().parents[2]
SERVE = REPO / "scripts" / "serve.py"
TOKEN = "test-server-token-0123456789"
QUESTION = "How is data stored in milvus?"
GOLD_HEADING = "Product FAQ > Where does Milvus store data?"
MAX_LIFETIME = 600.0
_PREFIXES = ("DEEPSEEK_", "MILVUS_", "RAG_", "LANGSMITH_", "LANGCHAIN_", "OPENAI_", "ZILLIZ_")


@dataclass
class RunningServer:
    proc: subprocess.Popen[str]
    url: str
    data_dir: Path
    token: str | None
    log: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=60, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.post(path, json=body, **kwargs)

    def log_text(self) -> str:
        return "\n".join(self.log)


def server_env(data_dir: Path, home: Path, cache_dir: Path, deepseek: FakeDeepSeek | None, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        RAG_DATA_DIR=str(data_dir),
        RAG_CACHE_DIR=str(cache_dir),
        HF_HUB_DISABLE_TELEMETRY="1",
        DEEPSEEK_MAX_RETRIES="0",
        DEEPSEEK_TIMEOUT="5",
        PYTHONUNBUFFERED="1",
    )
    if deepseek is not None:
        env.update(DEEPSEEK_BASE_URL=deepseek.url, DEEPSEEK_API_KEY=deepseek.api_key or "")
    env.update(extra)
    return env


def _die_with_parent(parent: int):  # pragma: no cover - runs in the child between fork and exec
    def preexec() -> None:
        with suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], queue.Queue, list[str]]:
    """A process whose stderr lines are collected (list) and announced (queue) by a reader thread."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVE), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_parent(os.getpid()),
    )
    lines: queue.Queue = queue.Queue()
    log: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line.rstrip("\n"))
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    watchdog = threading.Timer(MAX_LIFETIME, proc.kill)
    watchdog.daemon = True
    watchdog.start()
    return proc, lines, log


@contextmanager
def start_server(
    data_dir: Path, workdir: Path, env: dict[str, str], *, token: str | None = None
) -> Iterator[RunningServer]:
    """Waits for the line announcing the URL (or for the process to end: the test then fails with its log)."""
    if token is not None:
        env = {**env, "RAG_SERVER_TOKEN": token}
    proc, lines, log = spawn(["--port", "0"], env, workdir)
    url = None
    try:
        while url is None:
            try:
                line = lines.get(timeout=120)
            except queue.Empty:
                pytest.fail("the server did not announce its URL within 120 s:\n" + "\n".join(log))
            if line is None:
                pytest.fail(f"the server exited with {proc.wait()} before serving:\n" + "\n".join(log))
            if "serving the Milvus docs on " in line:
                url = line.split("serving the Milvus docs on ", 1)[1].split()[0]
        yield RunningServer(proc, url, data_dir, token, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def read_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """(event, data) pairs of an SSE response; `message` when no event name; `[DONE]` kept as text."""
    events: list[tuple[str, Any]] = []
    name, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                text = "\n".join(data)
                events.append((name, text if text == "[DONE]" else json.loads(text)))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return events


def build_index(data_dir: Path, docs_zip: Path, cache_dir: Path) -> Path:
    from config.settings import get_settings
    from index.pipeline import run_ingest

    settings = get_settings(data_dir_override=data_dir, cache_dir_override=cache_dir)
    run_ingest(settings, source=str(docs_zip), progress=False)
    return data_dir


@pytest.fixture(scope="package")
def fake_deepseek() -> Iterator[FakeDeepSeek]:
    with FakeDeepSeek(max_lifetime=MAX_LIFETIME) as fake:
        yield fake


@pytest.fixture
def deepseek(fake_deepseek: FakeDeepSeek) -> Iterator[FakeDeepSeek]:
    """The package's fake DeepSeek with no scenario and no recorded requests, for one test."""
    fake_deepseek.reset()
    yield fake_deepseek
    fake_deepseek.reset()


@pytest.fixture(scope="package")
def served_index(tmp_path_factory: pytest.TempPathFactory, docs_zip: Path, model_cache_dir: Path) -> Path:
    return build_index(tmp_path_factory.mktemp("served-index"), docs_zip, model_cache_dir)


@pytest.fixture(scope="package")
def server(
    tmp_path_factory: pytest.TempPathFactory, served_index: Path, model_cache_dir: Path, fake_deepseek: FakeDeepSeek
) -> Iterator[RunningServer]:
    """The package's server: FAQ index, fake DeepSeek, RAG_SERVER_TOKEN set."""
    work = tmp_path_factory.mktemp("server-work")
    env = server_env(served_index, work, model_cache_dir, fake_deepseek)
    with start_server(served_index, work, env, token=TOKEN) as running:
        yield running
