"""A real standalone Milvus server (PyPI package `milvus`, server 2.3.5) for integration tests.

Use it from a session-scoped fixture::

    @pytest.fixture(scope="session")
    def milvus_server_uri(tmp_path_factory):
        with start_milvus_server(tmp_path_factory.mktemp("milvus")) as uri:
            yield uri            # "http://127.0.0.1:<port>"

Why not `default_server.start()` / `.stop()` as the package documents them:
- `MilvusServer.wait_started()` polls for up to 180 s while `server_proc is not None`, so a server that
  died at start (port clash) is waited on for three minutes; here a dead process fails the fixture at once.
- The package probes ports upwards from the defaults (19530, 2379, ...) and then closes its probe sockets,
  and the embedded etcd's peer port 2380 is not configurable at all: a second server on the machine (another
  pytest session, a developer's own Milvus) dies with "bind: address already in use". Here every port,
  the etcd ones included, is a fresh kernel-assigned one, and a clash is retried with new ports.
- The server's graceful stop (SIGTERM) can hang for many minutes once a collection exists (seen: > 25 min);
  the data is thrown away anyway, so teardown SIGKILLs the process group.
- The server must not outlive pytest: it runs under coreutils `timeout` (hard cap `max_lifetime_s`) with
  PR_SET_PDEATHSIG, so it goes when the pytest process dies, even by SIGKILL.

We still use the package's config template and bundled binaries (`MilvusServerConfig`,
`_initialize_data_files`), which is why `milvus` is pinned to <2.4 in the test extra.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

# Every port the 2.3.5 config template exposes (see milvus/data/config.yaml.template).
_PORT_KEYS = (
    "etcd_port",
    "root_coord_port",
    "proxy_port",
    "proxy_internal_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
)
# Components advertise "the first unicastable address" to each other unless told; keep them on loopback.
_IP_ENV = (
    "ROOTCOORD_IP",
    "PROXY_IP",
    "QUERYCOORD_IP",
    "QUERYNODE_IP",
    "INDEXCOORD_IP",
    "INDEXNODE_IP",
    "DATACOORD_IP",
    "DATANODE_IP",
)
# Milvus reads every environment variable as a config override (ETCD_ENDPOINTS -> etcd.endpoints), so
# the server gets a minimal environment instead of the test process's.
_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
# A Strong read waits for the next time tick: 200 ms by default made every Strong search/query take
# 200-600 ms; 20 ms gives ~40 ms at ~6 % of a core while idle (5 ms: ~10 ms reads, ~14 % of a core).
_TEST_TUNING = {"PROXY_TIMETICKINTERVAL": "20"}

_PR_SET_PDEATHSIG = 1
_live: dict[int, subprocess.Popen[bytes]] = {}


class MilvusServerError(RuntimeError):
    """The server could not be started; the message names the cause and the last server log lines."""


def _free_ports(n: int) -> list[int]:
    """Distinct ports the kernel calls free right now (held together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent(parent_pid: int):  # pragma: no cover - runs in the child between fork and exec
    def preexec() -> None:
        with suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the group is `timeout` + milvus
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    _live.pop(proc.pid, None)


@atexit.register
def _kill_leftovers() -> None:
    """Last resort if a fixture was never torn down (e.g. the generator was garbage-collected)."""
    for proc in list(_live.values()):
        _kill(proc)


def _log_excerpt(log_file: Path, max_lines: int = 8) -> str:
    """The server log is ~10k lines of stack traces: keep the last error lines, shortened."""
    try:
        lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    picked = [ln for ln in lines if "[ERROR]" in ln or "[FATAL]" in ln or ln.startswith(("panic", "fatal"))]
    picked = (picked or lines)[-max_lines:]
    return "\n".join("    " + ln[:400] for ln in picked) or "(empty server log)"


def _healthy(web_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/healthz", timeout=1) as resp:
            return b"OK" in resp.read()
    except (OSError, urllib.error.URLError):
        return False


def _launch(server_dir: Path, max_lifetime_s: float, extra_env: Mapping[str, str]):
    """One attempt: fresh ports, config, process. Returns (proc, uri, web_port, log_file)."""
    from milvus import MilvusServerConfig, _initialize_data_files

    ports = _free_ports(len(_PORT_KEYS) + 2)
    port_cfg = dict(zip(_PORT_KEYS, ports[: len(_PORT_KEYS)], strict=True))
    etcd_peer, web_port = ports[-2], ports[-1]
    config = MilvusServerConfig(data_dir=str(server_dir), **port_cfg)
    # Binds each port once more (raises RuntimeError if taken meanwhile), writes configs/milvus.yaml.
    config.resolve()
    _initialize_data_files(str(server_dir))  # unpacks bin/ (~250 MB, ~3 s) unless already there

    etcd_cfg = server_dir / "configs" / "embedEtcd.yaml"
    client_url = f"http://127.0.0.1:{port_cfg['etcd_port']}"
    peer_url = f"http://127.0.0.1:{etcd_peer}"
    etcd_cfg.write_text(
        "name: default\n"
        f"listen-client-urls: {client_url}\nadvertise-client-urls: {client_url}\n"
        f"listen-peer-urls: {peer_url}\ninitial-advertise-peer-urls: {peer_url}\n"
        f"initial-cluster: default={peer_url}\n",
        encoding="utf-8",
    )
    bin_dir = server_dir / "bin"
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env.update(
        {
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(web_port),  # serves /healthz
            "MILVUS_RUN_DIR": str(server_dir / "run"),
            "LD_LIBRARY_PATH": str(bin_dir),
            "ETCD_CONFIG_PATH": str(etcd_cfg),
        }
    )
    env.update({name: "127.0.0.1" for name in _IP_ENV})
    env.update(_TEST_TUNING)
    env.update(extra_env)

    cmd = [str(bin_dir / "milvus"), "run", "standalone"]
    timeout_bin = shutil.which("timeout")
    if timeout_bin:
        # SIGTERM from PDEATHSIG is forwarded to milvus; its graceful stop may hang, so KILL 3 s later.
        cmd = [timeout_bin, "-k", "3", "-s", "KILL", f"{int(max_lifetime_s)}s", *cmd]
    log_file = server_dir / "logs" / "milvus-stdout.log"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=server_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if sys.platform.startswith("linux") else None,
        )
    _live[proc.pid] = proc
    return proc, f"http://127.0.0.1:{port_cfg['proxy_port']}", web_port, log_file


def _wait_ready(proc: subprocess.Popen[bytes], uri: str, web_port: int, deadline: float) -> str | None:
    """None when the server answers; else why not."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"the server exited with code {proc.returncode} while starting"
        if _healthy(web_port):
            break
        time.sleep(0.1)
    else:
        return "the server did not report healthy in time"
    from pymilvus import MilvusClient

    try:  # /healthz can be OK a moment before the proxy serves gRPC
        client = MilvusClient(uri=uri, timeout=max(1.0, deadline - time.monotonic()))
        client.get_server_version()
        client.close()
    except Exception as exc:  # noqa: BLE001 - reported to the test author
        return f"the server is healthy but {uri} does not answer: {exc}"
    return None


@contextmanager
def start_milvus_server(
    tmp_dir: str | os.PathLike[str],
    *,
    start_timeout_s: float = 120.0,
    max_lifetime_s: float = 3 * 3600,
    attempts: int = 3,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Start Milvus 2.3.5 in a new folder under `tmp_dir`, yield `http://127.0.0.1:<port>`, then kill it
    and delete the folder.

    A failed start is a `pytest.fail` naming the cause and the server's last error lines, never a hang:
    at most `attempts` tries of `start_timeout_s` each, retried only on port clashes.
    `max_lifetime_s` is a hard cap enforced outside Python (coreutils `timeout`), longer than any test run.
    `extra_env` passes Milvus config overrides as environment variables, named like the YAML keys
    (`proxy.timeTickInterval` -> `PROXY_TIMETICKINTERVAL`, which this sets to 20 ms for fast Strong reads).
    Call it from the main thread: the kill-on-parent-death signal is tied to the thread that starts it.
    """
    try:
        import milvus  # noqa: F401
    except ImportError:
        pytest.fail("the real Milvus server needs the test extra: pip install -e '.[test]'", pytrace=False)

    Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    server_dir = Path(tempfile.mkdtemp(prefix="milvus-server-", dir=tmp_dir))
    proc: subprocess.Popen[bytes] | None = None
    try:
        problem = "not started"
        for attempt in range(1, attempts + 1):
            shutil.rmtree(server_dir / "data", ignore_errors=True)  # etcd/rocksmq state of a failed try
            try:
                proc, uri, web_port, log_file = _launch(server_dir, max_lifetime_s, extra_env or {})
            except RuntimeError as exc:  # the package's "set proxy_port=..., but bind failed"
                problem = f"port taken before start ({exc})"
                continue
            except OSError as exc:  # unpacking or executing the bundled binary (disk full, noexec /tmp...)
                problem = f"cannot run the bundled server binary: {exc}"
                break
            problem = _wait_ready(proc, uri, web_port, time.monotonic() + start_timeout_s)
            if problem is None:
                break
            _kill(proc)
            proc = None
            excerpt = _log_excerpt(log_file)
            problem = f"{problem} (attempt {attempt}/{attempts}); server log:\n{excerpt}"
            if "address already in use" not in excerpt:
                break
        if proc is None:
            pytest.fail(f"could not start the Milvus test server in {server_dir}: {problem}", pytrace=False)
        yield uri
    finally:
        if proc is not None:
            _kill(proc)
        shutil.rmtree(server_dir, ignore_errors=True)
