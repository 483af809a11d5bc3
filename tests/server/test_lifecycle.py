"""Starting and stopping: no index yet, SIGTERM while answering, one server per index, a port in use,
`server.json` beside the index while it runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import QUESTION, SERVE, build_index, read_events, server_env, start_server


@pytest.fixture
def own_index(tmp_path: Path, docs_zip: Path, model_cache_dir: Path) -> Path:
    return build_index(tmp_path / "index", docs_zip, model_cache_dir)


def test_without_an_index_health_says_why_and_the_index_is_picked_up_once_built(
    tmp_path, deepseek, docs_zip, model_cache_dir
):
    data = tmp_path / "empty"
    env = server_env(data, tmp_path, model_cache_dir, deepseek)
    with start_server(data, tmp_path, env) as server:
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 503
        assert health.json()["reason"].startswith("no index yet") and "ingest" in health.json()["reason"]
        response = server.post("/api/ask", {"question": QUESTION})
        assert response.status_code == 503 and "no index yet" in response.json()["error"]["message"]

        build_index(data, docs_zip, model_cache_dir)  # the server let go of the folder: an ingest can run
        health = httpx.get(f"{server.url}/health")  # a health probe looks for the index afresh
        assert health.status_code == 200 and health.json()["chunks"] > 50
        assert server.post("/api/ask", {"question": QUESTION}).status_code == 200


def test_sigterm_lets_the_answer_in_flight_finish_then_closes_the_index(tmp_path, own_index, deepseek, model_cache_dir):
    env = server_env(own_index, tmp_path, model_cache_dir, deepseek)
    record = own_index / "server.json"
    with start_server(own_index, tmp_path, env) as server:
        assert json.loads(record.read_text()) == {
            "url": server.url, "pid": server.proc.pid, "collection": "my_rag_collection"
        }
        release = deepseek.pause_stream(after_chunks=2)
        events: list = []
        tokens_seen = threading.Event()

        def listen() -> None:
            with httpx.Client(timeout=60) as client:
                with client.stream("POST", f"{server.url}/api/ask", json={"question": QUESTION, "stream": True}) as r:
                    name = None
                    for line in r.iter_lines():
                        if line.startswith("event:"):
                            name = line[6:].strip()
                            events.append(name)
                            if events.count("token") == 2:
                                tokens_seen.set()

        reader = threading.Thread(target=listen)
        reader.start()
        assert tokens_seen.wait(60)
        server.proc.send_signal(signal.SIGTERM)
        release.set()
        reader.join(60)
        assert server.proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done
    assert events[-1] == "sources" and events.count("token") > 2
    assert "index closed" in server.log_text()
    assert not record.exists()
    # the folder is free again: another process opens it
    from config.settings import get_settings
    from index.store import open_client
    from index.store import release as release_store

    settings = get_settings(data_dir_override=own_index)
    release_store(settings, open_client(settings))


def test_a_second_server_on_the_same_index_points_at_the_first(tmp_path, own_index, deepseek, model_cache_dir):
    env = server_env(own_index, tmp_path, model_cache_dir, deepseek)
    with start_server(own_index, tmp_path, env) as first:
        second = subprocess.run(
            [sys.executable, str(SERVE), "--port", "0"], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120,
        )
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1] == (
            f"error: a server (pid {first.proc.pid}) already serves this index at {first.url} — "
            "use that one, or stop it first"
        )
        assert httpx.get(f"{first.url}/health").status_code == 200


def test_a_port_in_use_is_one_line(tmp_path, deepseek, model_cache_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = server_env(tmp_path / "data", tmp_path, model_cache_dir, deepseek)
        result = subprocess.run(
            [sys.executable, str(SERVE), "--port", str(port)], env=env, cwd=tmp_path, capture_output=True,
            text=True, timeout=120,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use) — stop what uses the port or pick "
        f"another: --port {port + 1}"
    ]


def test_a_stale_record_is_ignored(tmp_path):
    from config.settings import get_settings
    from server.discovery import find_server, write_record

    settings = get_settings(data_dir_override=tmp_path)
    write_record(settings, "http://127.0.0.1:1")
    assert find_server(settings) is not None  # our own pid: alive
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": dead.pid,
                                                      "collection": settings.collection}))
    assert find_server(settings) is None
    other = get_settings(data_dir_override=tmp_path, collection="another")
    write_record(settings, "http://127.0.0.1:1")
    assert find_server(other) is None
    os.remove(tmp_path / "server.json")


def test_no_key_gives_passages_and_says_how_to_set_it(tmp_path, own_index, model_cache_dir):
    env = server_env(own_index, tmp_path, model_cache_dir, None, RAG_SERVER_CORS_ORIGINS="http://app.example")
    with start_server(own_index, tmp_path, env) as server:
        assert_cors_only_for(server, "http://app.example")
        body = server.post("/api/ask", {"question": QUESTION}).json()
        assert body["answer"] is None and body["sources"] and "DEEPSEEK_API_KEY" in body["notice"]
        response = server.post("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 503 and "DEEPSEEK_API_KEY is not set" in response.json()["error"]["message"]
        with server.client() as client:
            with client.stream("POST", "/api/ask", json={"question": QUESTION, "stream": True}) as r:
                events = read_events(r)
        assert [name for name, _ in events] == ["sources"] and "notice" in events[0][1]


def assert_cors_only_for(server, allowed: str) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = httpx.options(f"{server.url}/api/ask", headers={"Origin": allowed, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
    other = httpx.options(f"{server.url}/api/ask", headers={"Origin": "http://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    answer = httpx.post(f"{server.url}/api/ask", json={"question": QUESTION, "retrieve_only": True},
                        headers={"Origin": allowed})
    assert answer.headers["access-control-allow-origin"] == allowed


def test_cors_is_off_by_default(server):
    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    response = httpx.options(f"{server.url}/api/ask", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    response = httpx.post(f"{server.url}/api/ask", json={"question": QUESTION, "retrieve_only": True},
                          headers={"Origin": "http://app.example", **server.headers})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
