"""The fake LangSmith understands every way the real `langsmith` client sends runs, so tests built on it prove
what the client really posts: zstd multipart (the default against LangSmith), plain multipart, JSON batches."""

from __future__ import annotations

import time

import pytest
from langsmith import Client, traceable, tracing_context

from tests.support.langsmith_server import FakeLangSmith


@traceable(name="outer")
def outer(x: int) -> int:
    return inner(x) + 1


@traceable(name="inner")
def inner(x: int) -> int:
    if x < 0:
        raise ValueError("negative input")
    return x * 2


@pytest.mark.parametrize(
    ("multipart", "compression", "endpoint", "encoding"),
    [
        (True, True, "/runs/multipart", "zstd"),  # what the client does against LangSmith today
        (True, False, "/runs/multipart", None),
        (False, False, "/runs/batch", None),
    ],
)
def test_the_real_client_posts_a_run_tree_it_can_read(multipart, compression, endpoint, encoding) -> None:
    with FakeLangSmith(multipart=multipart, compression=compression) as server:
        client = Client(api_url=server.url, api_key=server.api_key)
        if compression:  # the client turns compression on from a thread once it has read /info: let it
            deadline = time.monotonic() + 10
            while client.compressed_traces is None and time.monotonic() < deadline:
                time.sleep(0.01)
        with tracing_context(enabled=True, client=client, project_name="smoke"):
            assert outer(3) == 7
            with pytest.raises(ValueError):
                outer(-1)
        client.flush()
        runs = server.wait_for(lambda r: len(r) == 4 and all(run.get("end_time") for run in r.values()))

        posts = server.ingest_requests()
        assert {r.path for r in posts} == {endpoint}
        assert {r.headers.get("content-encoding") for r in posts} == {encoding}
        assert all(r.headers["x-api-key"] == server.api_key for r in posts)
    by_name: dict[str, list[dict]] = {}
    for run in runs.values():
        by_name.setdefault(run["name"], []).append(run)
    ok_outer = next(r for r in by_name["outer"] if not r.get("error"))
    ok_inner = next(r for r in by_name["inner"] if r["parent_run_id"] == ok_outer["id"])
    assert ok_outer["inputs"] == {"x": 3} and ok_outer["outputs"] == {"output": 7}
    assert ok_inner["outputs"] == {"output": 6} and ok_inner["trace_id"] == ok_outer["id"]
    assert ok_outer["session_name"] == "smoke"
    failed_inner = next(r for r in by_name["inner"] if r.get("error"))
    assert "negative input" in failed_inner["error"]


def test_a_wrong_api_key_is_refused_like_langsmith_does() -> None:
    with FakeLangSmith(multipart=False) as server:
        client = Client(api_url=server.url, api_key="lsv2_pt_wrong")
        with tracing_context(enabled=True, client=client):
            outer(1)
        client.flush()
        assert server.runs() == {}
        assert server.ingest_requests()[0].path == "/runs/batch"
