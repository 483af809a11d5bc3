"""The server fixture starts a usable server, two can run at once, a failed start fails fast, nothing stays."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.milvus_server import start_milvus_server

pytestmark = pytest.mark.server


def _milvus_pids_under(folder: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if str(folder) in line]


def test_server_serves_strong_reads_and_leaves_nothing(tmp_path: Path) -> None:
    from pymilvus import MilvusClient

    tmp_path = tmp_path / "servers"

    with start_milvus_server(tmp_path) as uri:
        assert uri.startswith("http://127.0.0.1:")
        client = MilvusClient(uri=uri, timeout=30)
        assert client.get_server_version().startswith("v2.3")
        client.create_collection("smoke", dimension=4, consistency_level="Strong")
        client.insert("smoke", [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}])
        assert [r["id"] for r in client.query("smoke", filter="id > 0", output_fields=["id"])] == [1]
        client.close()
        assert _milvus_pids_under(tmp_path)
    assert _milvus_pids_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_two_servers_run_side_by_side(tmp_path: Path) -> None:
    from pymilvus import MilvusClient

    with start_milvus_server(tmp_path / "a") as uri_a, start_milvus_server(tmp_path / "b") as uri_b:
        assert uri_a != uri_b
        for uri in (uri_a, uri_b):
            client = MilvusClient(uri=uri, timeout=30)
            assert client.list_collections() == []
            client.close()
    assert _milvus_pids_under(tmp_path) == []


def test_a_server_that_dies_at_start_fails_the_test_quickly(tmp_path: Path) -> None:
    tmp_path = tmp_path / "servers"
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="exited with code"):
        with start_milvus_server(tmp_path, extra_env={"ETCD_CONFIG_PATH": "/nonexistent/embedEtcd.yaml"}):
            pass
    assert time.monotonic() - started < 60
    assert _milvus_pids_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_server_dies_with_a_killed_pytest(tmp_path: Path) -> None:
    """SIGKILL of the test process (no teardown at all) still ends the server."""
    tmp_path = tmp_path / "servers"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.support.milvus_server import start_milvus_server
        with start_milvus_server({str(tmp_path)!r}) as uri:
            print(uri, flush=True)
            time.sleep(600)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("http://127.0.0.1:")
        assert _milvus_pids_under(tmp_path)
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 15
    while _milvus_pids_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _milvus_pids_under(tmp_path) == []
    # A killed run cannot delete its ~400 MB server folder; pytest prunes old basetemps, we do it now.
    shutil.rmtree(tmp_path)
