"""Traces of the chain as a user reads them: the JSONL file `JsonlTracer` writes, the top run's tags and metadata,
and LangSmith receiving the chain's runs when it is one step of another app — never with a secret in them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tracers.context import collect_runs
from langchain_core.vectorstores import InMemoryVectorStore
from langsmith import Client, tracing_context
from pydantic import SecretStr

from chains import JsonlTracer, build_rag_chain, redact_langsmith
from chains.tracing import FIELDS, PROJECT_TAG, secret_anonymizer
from config.errors import ConfigError
from config.settings import Settings
from tests.chains.conftest import DOCS, KeywordRetriever
from tests.support.langsmith_server import FakeLangSmith
from tests.support.openai_server import FakeDeepSeek

STORAGE = "Where does Milvus store data?"
MILVUS_TOKEN = "root:milvus-token-7d1f3a"
STEPS = {"rag", "retrieve", "format_context", "generate"}


def read_runs(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def by_name(runs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (run,) = [r for r in runs if r["name"] == name]
    return run


def ancestors(run: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    names = []
    while run.get("parent_run_id"):
        run = by_id[run["parent_run_id"]]
        names.append(run["name"])
    return names


@pytest.fixture
def secret_settings(openai_server: FakeDeepSeek) -> Settings:
    return Settings(
        deepseek_api_key=openai_server.api_key,
        deepseek_base_url=openai_server.url,
        deepseek_max_retries=0,
        milvus_token=MILVUS_TOKEN,
    )


def test_the_file_holds_the_whole_run_tree_one_run_per_line(
    openai_server: FakeDeepSeek, rag_chain: Runnable, tmp_path: Path
) -> None:
    path = tmp_path / "trace.jsonl"
    result = rag_chain.invoke({"question": STORAGE}, config={"callbacks": [JsonlTracer(path)]})

    runs = read_runs(path)
    assert all(tuple(run) == FIELDS for run in runs)
    root = runs[0]
    assert root["name"] == "rag" and root["parent_run_id"] is None
    assert {r["trace_id"] for r in runs} == {root["id"]}
    seen: set[str] = set()
    for run in runs:  # parents come before their children
        assert run["parent_run_id"] is None or run["parent_run_id"] in seen
        seen.add(run["id"])
        assert run["start_time"] <= run["end_time"] and run["error"] is None
    by_id = {r["id"]: r for r in runs}
    assert STEPS <= {r["name"] for r in runs}
    for step in ("retrieve", "format_context", "generate"):
        assert ancestors(by_name(runs, step), by_id)[-1] == "rag"
    llm = by_name(runs, "ChatOpenAI")
    assert llm["run_type"] == "llm" and ancestors(llm, by_id)[0] == "generate"
    prompt_sent = json.dumps(llm["inputs"]["messages"])
    assert STORAGE in prompt_sent and "MinIO" in prompt_sent  # what went out to the model

    assert root["inputs"]["question"] == STORAGE
    assert root["outputs"]["answer"] == result["answer"]
    retriever = next(r for r in runs if r["run_type"] == "retriever")
    assert ancestors(retriever, by_id)[0] == "retrieve"
    docs = retriever["outputs"]["documents"]
    assert docs[0] == {"page_content": DOCS[0].page_content, "metadata": {**DOCS[0].metadata, "score": 0.5}}
    assert root["tags"] == [PROJECT_TAG]
    assert root["metadata"] == {
        "k": 3, "llm_model": "deepseek-chat", "retriever": "KeywordRetriever", "query_rewrite": "auto"
    }


def test_each_answer_appends_one_trace(openai_server: FakeDeepSeek, rag_chain: Runnable, tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    tracer = JsonlTracer(path)
    rag_chain.invoke({"question": STORAGE}, config={"callbacks": [tracer]})
    first = read_runs(path)
    chunks = rag_chain.stream({"question": "What affects recall?"}, config={"callbacks": [JsonlTracer(path)]})
    streamed = "".join(chunk.get("answer", "") for chunk in chunks)

    runs = read_runs(path)
    assert runs[: len(first)] == first
    roots = [r for r in runs if r["parent_run_id"] is None]
    assert [r["inputs"]["question"] for r in roots] == [STORAGE, "What affects recall?"]
    assert roots[1]["outputs"]["answer"] == streamed  # a streamed answer is recorded whole
    assert len({r["trace_id"] for r in runs}) == 2


def test_no_secret_is_ever_written(
    openai_server: FakeDeepSeek, secret_settings: Settings, retriever: KeywordRetriever, tmp_path: Path
) -> None:
    """A key pasted into a question, a SecretStr among the inputs, the Milvus token: none reach the file."""
    path = tmp_path / "trace.jsonl"
    rag = build_rag_chain(retriever, settings=secret_settings)
    key = openai_server.api_key
    rag.invoke(
        {"question": f"My key {key} and token {MILVUS_TOKEN}: where does Milvus store data?", "extra": SecretStr(key)},
        config={"callbacks": [JsonlTracer(path, settings=secret_settings)]},
    )

    text = path.read_text(encoding="utf-8")
    assert key not in text and MILVUS_TOKEN not in text
    root = read_runs(path)[0]
    assert root["inputs"]["question"] == "My key [redacted] and token [redacted]: where does Milvus store data?"
    assert root["inputs"]["extra"] == "**********"


def test_a_failed_call_is_recorded_as_an_error_without_the_key(
    openai_server: FakeDeepSeek, retriever: KeywordRetriever, tmp_path: Path
) -> None:
    """DeepSeek's 401 echoes the key's last characters ("****cdef"): the error is kept, the key tail is not."""
    wrong = "sk-wrong-key-9876543210fedcba"
    settings = Settings(deepseek_api_key=wrong, deepseek_base_url=openai_server.url, deepseek_max_retries=0)
    path = tmp_path / "trace.jsonl"
    with pytest.raises(Exception, match="401"):
        build_rag_chain(retriever, settings=settings).invoke(
            {"question": STORAGE}, config={"callbacks": [JsonlTracer(path, settings=settings)]}
        )

    runs = read_runs(path)
    for name in ("rag", "generate", "ChatOpenAI"):
        assert "401" in by_name(runs, name)["error"]
    assert by_name(runs, "retrieve")["error"] is None
    text = path.read_text(encoding="utf-8")
    assert wrong not in text and wrong[-4:] not in text


def test_the_top_run_says_which_index_and_models_answered(openai_server: FakeDeepSeek, settings: Settings) -> None:
    from retrieval.retriever import build_retriever

    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
    store.add_documents(DOCS)
    rag = build_rag_chain(build_retriever(settings, k=2, mode="dense", store=store), settings=settings)
    with collect_runs() as collector:
        rag.invoke({"question": STORAGE}, config={"configurable": {"model": "deepseek-reasoner"}})

    (root,) = collector.traced_runs
    assert root.name == "rag"
    assert root.tags == [PROJECT_TAG, "retrieval:dense"]
    assert {k: v for k, v in root.metadata.items() if not k.startswith("ls_")} == {
        "k": settings.k,
        "llm_model": "deepseek-chat",
        "retriever": "MilvusRetriever",
        "collection": settings.collection,
        "retrieval_mode": "dense",
        "embedding_model": "DeterministicFakeEmbedding",
        "model": "deepseek-reasoner",  # the per-call override, recorded by LangChain beside the default
        "query_rewrite": "auto",
    }


def test_the_chain_inside_another_app_is_traced_to_langsmith(
    openai_server: FakeDeepSeek, secret_settings: Settings, retriever: KeywordRetriever
) -> None:
    """The app's own pipeline is the root; the chain's steps nest under it, as LangSmith shows them."""
    rag = build_rag_chain(retriever, settings=secret_settings)
    app = (RunnableLambda(lambda q: {"question": q}, name="my_app_input") | rag).with_config(run_name="my_app")
    with FakeLangSmith() as langsmith:
        client = Client(api_url=langsmith.url, api_key=langsmith.api_key)
        with tracing_context(enabled=True, client=client, project_name="my-app"):
            answer = app.invoke(STORAGE)["answer"]
        client.flush()
        runs = langsmith.wait_for(lambda r: any(run["name"] == "my_app" and run.get("end_time") for run in r.values()))
        payload = langsmith.payload_bytes()

    by_id = runs
    named = {run["name"]: run for run in runs.values()}
    assert ancestors(named["rag"], by_id) == ["my_app"]
    for step in ("retrieve", "format_context", "generate"):
        assert ancestors(named[step], by_id)[-2:] == ["rag", "my_app"]
    assert named["rag"]["inputs"]["question"] == STORAGE and named["rag"]["outputs"]["answer"] == answer
    assert named["rag"]["extra"]["metadata"]["llm_model"] == "deepseek-chat"
    assert {run["session_name"] for run in runs.values()} == {"my-app"}
    for secret in (openai_server.api_key, MILVUS_TOKEN, langsmith.api_key):
        assert secret.encode() not in payload


@pytest.mark.parametrize("where", ["missing/trace.jsonl", "."])
def test_a_trace_path_that_cannot_be_written_is_refused_up_front(tmp_path: Path, where: str) -> None:
    with pytest.raises(ConfigError, match="trace file"):
        JsonlTracer(tmp_path / where)


def test_langsmith_redaction_is_left_alone_when_tracing_is_off(settings: Settings) -> None:
    with tracing_context(enabled=False):
        assert redact_langsmith(settings) is False


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("Fails, Your api key: ****cdef is invalid", "Fails, Your api key: [redacted] is invalid"),
        ("Incorrect API key provided: sk-ab12******xyz9. See", "Incorrect API key provided: [redacted]. See"),
        ("token root:milvus-token-7d1f3a in a URL", "token [redacted] in a URL"),
        # what must survive: docs markdown, tracebacks, a short secret inside ordinary words
        ("Use ***bold italic*** or **bold**", "Use ***bold italic*** or **bold**"),
        ("return func(*args, **kwargs)", "return func(*args, **kwargs)"),
        ("Milvus stores data in MinIO", "Milvus stores data in MinIO"),
    ],
)
def test_redaction_takes_secrets_and_leaves_text(text: str, written: str) -> None:
    anonymize = secret_anonymizer([MILVUS_TOKEN, "Milvus"])
    assert anonymize(text) == written
    assert anonymize({"inputs": [text], "api_key": "x"}) == {"inputs": [written], "api_key": "**********"}
