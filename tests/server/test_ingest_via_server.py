"""`ingest.py` while the server holds the Milvus Lite index: the server runs the ingest, keeps answering
questions meanwhile, refuses a second ingest at once, and answers from the new index afterwards."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import QUESTION, REPO, TOKEN, RunningServer, server_env, start_server

INGEST = [sys.executable, str(REPO / "scripts" / "ingest.py")]
PRODUCT_FAQ = "en/faq/product_faq.md"
PERFORMANCE_QUESTION = "How to set nlist and nprobe for IVF indexes?"
PERFORMANCE_FAQ = "en/faq/performance_faq.md"


def build_small_index(data: Path, docs_zip: Path, model_cache_dir: Path) -> int:
    """The product FAQ alone, so that an ingest of every FAQ file visibly changes what the server answers from;
    returns its number of chunks."""
    from config.settings import get_settings
    from index.pipeline import run_ingest

    settings = get_settings(data_dir_override=data, cache_dir_override=model_cache_dir)
    return run_ingest(settings, source=str(docs_zip), glob=PRODUCT_FAQ, progress=False).chunks_added


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory, docs_zip: Path, model_cache_dir: Path) -> Path:
    data = tmp_path_factory.mktemp("small-index")
    build_small_index(data, docs_zip, model_cache_dir)
    return data


@pytest.fixture(scope="module")
def small_server(
    tmp_path_factory: pytest.TempPathFactory, small_index: Path, model_cache_dir: Path, fake_deepseek
) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("ingest-server-work")
    env = server_env(small_index, work, model_cache_dir, fake_deepseek, RAG_DOWNLOAD_TIMEOUT="600")
    with start_server(small_index, work, env, token=TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def product_chunks(small_server: RunningServer) -> int:
    """Chunks of the product FAQ alone, read before any test ingests through the server."""
    return chunks(small_server)


@pytest.fixture
def cli_env(tmp_path: Path, small_server: RunningServer, model_cache_dir: Path) -> dict[str, str]:
    """The environment of a user's shell: the same index folder, the server's token."""
    return server_env(small_server.data_dir, tmp_path, model_cache_dir, None, RAG_SERVER_TOKEN=TOKEN)


def ingest(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*INGEST, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def chunks(server: RunningServer) -> int:
    health = httpx.get(f"{server.url}/health", timeout=60)
    assert health.status_code == 200, health.text
    return health.json()["chunks"]


def passages(server: RunningServer, question: str) -> list[str]:
    response = server.post("/api/ask", {"question": question, "retrieve_only": True, "k": 3})
    assert response.status_code == 200, response.text
    return [s["source"] for s in response.json()["sources"]]


def summary_counts(line: str) -> dict[str, int]:
    """`files: 4 read, ... | chunks: 61 added, ...` as {"chunks added": 61, ...}."""
    counts = {}
    for part in line.split("|"):
        kind, _, rest = part.strip().partition(": ")
        for number, what in re.findall(r"(\d+) (\w+)", rest):
            counts[f"{kind} {what}"] = int(number)
    return counts


class PausedZip:
    """The docs zip at a URL of its own (a fresh path: no cached download), sent in two halves: the second only
    once `go` is set, so an ingest that reads it is certainly under way until then."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        self.started, self.go = threading.Event(), threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                half = len(data) // 2
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:half])
                self.wfile.flush()
                outer.started.set()
                outer.go.wait(300)
                self.wfile.write(data[half:])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{uuid.uuid4().hex}/milvus_docs.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PausedZip:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_ingest_runs_in_the_server_which_answers_meanwhile_and_then_from_the_new_index(
    small_server, product_chunks, cli_env, tmp_path, docs_zip, deepseek
):
    assert set(passages(small_server, PERFORMANCE_QUESTION)) == {PRODUCT_FAQ}
    with PausedZip(docs_zip) as stand_in:
        first = ingest("--source", stand_in.url, "--glob", "en/faq/*.md", env=cli_env, cwd=tmp_path)
        assert stand_in.started.wait(120), "the server never started downloading the source"

        answer = small_server.post("/api/ask", {"question": QUESTION})  # asked while the ingest runs
        assert answer.status_code == 200, answer.text
        assert "[1]" in answer.json()["answer"]

        second = subprocess.run(
            [*INGEST, "--source", str(docs_zip)], env=cli_env, cwd=tmp_path, capture_output=True, text=True,
            timeout=180,
        )
        assert second.returncode == 1
        note, error = second.stderr.strip().splitlines()
        assert note == f"ingesting through the server at {small_server.url}"
        assert error.startswith("error: an ingest is already running on this server (")
        assert error.endswith(" — wait for it to finish (the server logs its summary), then run this again")

        stand_in.go.set()
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert err.strip().splitlines() == [f"ingesting through the server at {small_server.url}"]
    (summary,) = out.strip().splitlines()
    counts = summary_counts(summary)
    assert counts["files read"] == 4 and counts["files unchanged"] == 1 and counts["chunks added"] > 0

    assert chunks(small_server) == product_chunks + counts["chunks added"]
    assert passages(small_server, PERFORMANCE_QUESTION)[0] == PERFORMANCE_FAQ
    log = small_server.log_text()
    assert "ingest started: " in log and f"ingest finished: {summary}" in log


def test_a_rebuild_through_the_server_swaps_collections_while_every_question_is_answered(
    small_server, product_chunks, cli_env, tmp_path, docs_zip, deepseek
):
    statuses: list[int] = []
    done = threading.Event()

    def ask_until_done() -> None:
        with small_server.client() as client:
            while not done.is_set():
                body = {"question": PERFORMANCE_QUESTION, "retrieve_only": len(statuses) % 2 == 0}
                statuses.append(client.post("/api/ask", json=body).status_code)

    askers = [threading.Thread(target=ask_until_done) for _ in range(2)]
    for asker in askers:
        asker.start()
    try:
        for glob in ("en/faq/*.md", PRODUCT_FAQ):  # all the FAQ, then the product FAQ alone again
            run = subprocess.run(
                [*INGEST, "--source", str(docs_zip), "--glob", glob, "--rebuild"], env=cli_env, cwd=tmp_path,
                capture_output=True, text=True, timeout=600,
            )
            assert run.returncode == 0, run.stderr
    finally:
        done.set()
        for asker in askers:
            asker.join(120)
    assert statuses and set(statuses) == {200}
    assert chunks(small_server) == product_chunks
    assert set(passages(small_server, PERFORMANCE_QUESTION)) == {PRODUCT_FAQ}


def test_the_servers_token_is_needed_to_ingest_through_it(small_server, product_chunks, cli_env, tmp_path, docs_zip):
    before = chunks(small_server)
    refused = httpx.post(f"{small_server.url}/api/ingest", json={"source": str(docs_zip)}, timeout=60)
    assert refused.status_code == 401

    env = {k: v for k, v in cli_env.items() if k != "RAG_SERVER_TOKEN"}
    run = subprocess.run(
        [*INGEST, "--source", str(docs_zip), "--all"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=180,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"ingesting through the server at {small_server.url}",
        f"error: the server at {small_server.url} (which holds the index) needs its token — "
        "set RAG_SERVER_TOKEN to the token the server was started with",
    ]
    assert chunks(small_server) == before


def test_a_source_the_server_cannot_read_fails_with_the_line_and_exit_code_of_a_local_ingest(
    small_server, cli_env, tmp_path
):
    missing = str(tmp_path / "no-such-docs")
    alone = {**cli_env, "RAG_DATA_DIR": str(tmp_path / "no-server-here")}
    local = subprocess.run([*INGEST, "--source", missing], env=alone, cwd=tmp_path, capture_output=True, text=True,
                           timeout=180)
    remote = subprocess.run([*INGEST, "--source", missing], env=cli_env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=180)
    assert local.returncode == remote.returncode == 1
    (local_error,) = local.stderr.strip().splitlines()
    assert local_error.startswith("error: ") and "no-such-docs" in local_error
    assert remote.stderr.strip().splitlines() == [f"ingesting through the server at {small_server.url}", local_error]


def test_a_relative_source_sent_to_the_api_is_refused_with_one_line(small_server):
    response = small_server.post("/api/ingest", {"source": "docs", "glob": "en/faq/*.md"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "the source 'docs' is a relative path, and the server cannot tell relative to what — "
        "send an absolute path (on the server's machine) or an http(s) URL of a zip"
    )


def test_a_server_without_an_index_builds_it_by_ingest_and_serves_it(tmp_path, docs_zip, model_cache_dir, deepseek):
    data = tmp_path / "empty"
    env = server_env(data, tmp_path, model_cache_dir, deepseek)
    with start_server(data, tmp_path, env) as server:
        assert httpx.get(f"{server.url}/health", timeout=60).status_code == 503
        cli = server_env(data, tmp_path, model_cache_dir, None)
        run = subprocess.run([*INGEST, "--source", str(docs_zip), "--glob", PRODUCT_FAQ], env=cli, cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        assert run.stderr.strip().splitlines() == [f"ingesting through the server at {server.url}"]
        added = summary_counts(run.stdout.strip())["chunks added"]
        assert added > 0 and chunks(server) == added
        assert passages(server, QUESTION)[0] == PRODUCT_FAQ


def test_stopping_the_server_during_an_ingest_lets_it_finish(tmp_path, docs_zip, model_cache_dir):
    import signal

    data = tmp_path / "index"
    before = build_small_index(data, docs_zip, model_cache_dir)
    env = server_env(data, tmp_path, model_cache_dir, None, RAG_DOWNLOAD_TIMEOUT="600")
    with start_server(data, tmp_path, env) as server, PausedZip(docs_zip) as stand_in:
        cli = server_env(data, tmp_path, model_cache_dir, None)
        run = ingest("--source", stand_in.url, "--glob", "en/faq/*.md", env=cli, cwd=tmp_path)
        assert stand_in.started.wait(120), "the server never started downloading the source"
        server.proc.send_signal(signal.SIGTERM)
        stand_in.go.set()
        out, err = run.communicate(timeout=600)
        assert server.proc.wait(120) in (0, -signal.SIGTERM)
    assert run.returncode == 0, err
    added = summary_counts(out.strip())["chunks added"]
    assert added > 0 and "index closed" in server.log_text()

    from config.settings import get_settings
    from index.health import count_rows
    from index.store import open_client, release

    settings = get_settings(data_dir_override=data, cache_dir_override=model_cache_dir)
    client = open_client(settings)  # the folder is free again, and holds what the ingest wrote
    try:
        assert count_rows(client, settings.collection) == before + added
    finally:
        release(settings, client)


def test_skipped_files_and_the_summary_read_as_in_a_local_run(small_server, cli_env, tmp_path):
    faq = tmp_path / "docs" / "en" / "faq"
    faq.mkdir(parents=True)
    (faq / "tiny.md").write_text("# Tiny FAQ\n\n## What is in here?\n\nOne short answer about a small page.\n")
    (faq / "huge.md").write_text("# Huge\n\n" + "word " * 500_000)  # over RAG_MAX_FILE_BYTES (2 MB)
    args = ["--source", str(tmp_path / "docs"), "--collection", "scratch", "--no-progress"]  # not the served one
    served_before = chunks(small_server)
    alone = {**cli_env, "RAG_DATA_DIR": str(tmp_path / "no-server-here")}
    local = subprocess.run([*INGEST, *args], env=alone, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    remote = subprocess.run([*INGEST, *args], env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert local.returncode == remote.returncode == 0, remote.stderr
    # what ingest.py prints (locally the loader's own WARNING log line comes too; the server logs that one)
    printed = [line for line in local.stderr.strip().splitlines() if not line.startswith("WARNING: ")]
    assert printed and all(line.startswith("skipped en/faq/huge.md: larger than") for line in printed)
    assert remote.stderr.strip().splitlines() == [f"ingesting through the server at {small_server.url}", *printed]

    def without_seconds(out: str) -> str:
        return re.sub(r"\| [\d.]+ s", "| s", out.strip())

    assert without_seconds(remote.stdout) == without_seconds(local.stdout)
    assert summary_counts(remote.stdout)["chunks added"] > 0
    assert chunks(small_server) == served_before  # another collection of the same folder


def test_without_a_token_only_the_servers_own_machine_may_ingest(tmp_path):
    import asyncio

    from config.settings import get_settings
    from server.app import create_app
    from server.service import RagService
    from server.settings import get_server_settings

    service = RagService(get_settings(data_dir_override=tmp_path / "index"), threads=1)
    app = create_app(service, get_server_settings())

    async def post(client_host: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://rag") as client:
            return await client.post("/api/ingest", json={"source": "docs"})

    try:
        far, near = asyncio.run(post("192.0.2.7")), asyncio.run(post("127.0.0.1"))
    finally:
        service.close()
    assert far.status_code == 403 and far.json()["error"]["message"].startswith(
        "ingests are accepted only from the server's own machine while it has no token"
    )
    assert near.status_code == 400  # past the check: the relative source is what is wrong
