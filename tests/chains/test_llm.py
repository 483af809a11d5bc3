"""The DeepSeek model: credentials go only where they belong, each failure reads as one actionable line."""

from __future__ import annotations

import asyncio

import openai
import pytest
from langchain_core.runnables import Runnable
from pydantic import SecretStr

from chains import build_llm, build_rag_chain, to_llm_error
from config.errors import ConfigError, LLMError
from config.settings import Settings
from tests.chains.conftest import KeywordRetriever
from tests.support.net import free_port
from tests.support.openai_server import FakeDeepSeek

OPENAI_SECRETS = {
    "OPENAI_API_KEY": "sk-openai-must-not-leak-1111",
    "OPENAI_ADMIN_KEY": "sk-admin-must-not-leak-2222",
    "OPENAI_ORG_ID": "org-must-not-leak-3333",
    "OPENAI_PROJECT_ID": "proj_must_not_leak_4444",
    "OPENAI_CUSTOM_HEADERS": "Authorization: Bearer sk-custom-leak-5555\nX-Gateway: gw-must-not-leak-6666",
}


def failure(chain: Runnable, question: str = "Where does Milvus store data?") -> BaseException:
    with pytest.raises(Exception) as info:
        chain.invoke({"question": question})
    return info.value


def mapped(exc: BaseException) -> LLMError:
    error = to_llm_error(exc)
    assert isinstance(error, LLMError), f"{type(exc).__name__} was not mapped"
    assert "\n" not in str(error)
    return error


def test_missing_key_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="DEEPSEEK_API_KEY"):
        build_llm(Settings())
    with pytest.raises(ConfigError, match="DEEPSEEK_API_KEY"):
        build_llm(Settings(deepseek_api_key="  "))
    with pytest.raises(ConfigError, match="DEEPSEEK_API_KEY"):
        build_rag_chain(KeywordRetriever(docs=[]), settings=Settings())


def test_key_is_read_from_the_environment(
    openai_server: FakeDeepSeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", openai_server.api_key)
    monkeypatch.setenv("DEEPSEEK_BASE_URL", openai_server.url)
    assert build_llm().invoke("ping").content == "Echo: ping"


def test_only_the_deepseek_key_goes_only_to_deepseek(
    openai_server: FakeDeepSeek, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeDeepSeek(api_key=None) as decoy:  # where OPENAI_BASE_URL / OPENAI_API_BASE point
        for name, value in {
            **OPENAI_SECRETS,
            "OPENAI_BASE_URL": decoy.url,
            "OPENAI_API_BASE": decoy.url,
        }.items():
            monkeypatch.setenv(name, value)
        llm = build_llm(settings)
        llm.invoke("sync")
        "".join(chunk.text for chunk in llm.stream("stream"))
        asyncio.run(llm.ainvoke("async"))
        assert decoy.requests == []

    key = settings.deepseek_api_key.get_secret_value()
    assert len(openai_server.requests) == 3
    for request in openai_server.requests:
        assert request.path == "/chat/completions"
        assert request.authorization == f"Bearer {key}"
        others = {name: value for name, value in request.headers.items() if name != "authorization"}
        assert key not in str(others) and key.encode() not in request.raw
        assert not {"openai-organization", "openai-project", "x-gateway"} & set(request.headers)
        for secret in OPENAI_SECRETS.values():
            for part in secret.split("\n"):
                assert part.split(": ")[-1] not in str(request.headers) + request.raw.decode()
    assert key not in repr(llm) and key not in str(llm.model_dump())


def test_inside_a_langsmith_gateway_the_deepseek_key_stays_home(
    openai_server: FakeDeepSeek, settings: Settings
) -> None:
    from langchain_core.utils._gateway import langsmith_gateway

    with FakeDeepSeek(api_key=None) as gateway, langsmith_gateway(api_key="lsv2_gateway", base_url=gateway.url):
        with pytest.raises(openai.NotFoundError):  # the fake has no /openai/v1 route; what it saw matters
            build_llm(settings).invoke("hello")
    (request,) = gateway.requests
    assert request.path == "/openai/v1/chat/completions"
    assert request.authorization == "Bearer lsv2_gateway"
    assert settings.deepseek_api_key.get_secret_value() not in str(request.headers)
    assert openai_server.requests == []


def test_429_twice_then_success_is_retried_by_the_sdk(
    openai_server: FakeDeepSeek, rag_chain: Runnable
) -> None:
    openai_server.fail(429, times=2)
    result = rag_chain.invoke({"question": "Where does Milvus store data?"})
    assert "[1]" in result["answer"]
    assert len(openai_server.chat_requests()) == 3


def test_5xx_once_then_success(openai_server: FakeDeepSeek, rag_chain: Runnable) -> None:
    openai_server.fail(503, times=1)
    openai_server.fail(500, times=1)
    assert rag_chain.invoke({"question": "What affects recall?"})["sources"]
    assert len(openai_server.chat_requests()) == 3


@pytest.mark.parametrize(
    ("status", "problem", "fix", "attempts"),
    [
        (400, "rejected the request (400 Invalid Format", "DEEPSEEK_MODEL", 1),
        (401, "rejected the API key (401", "DEEPSEEK_API_KEY", 1),
        (402, "insufficient balance (402)", "top up", 1),
        (422, "rejected the request (422 Invalid Parameters", "DEEPSEEK_TEMPERATURE", 1),
        (429, "still rate limiting after retries (429", "DEEPSEEK_MAX_RETRIES", 3),
        (500, "server error, even after retries (500)", "status.deepseek.com", 3),
        (503, "overloaded, even after retries (503)", "status.deepseek.com", 3),
    ],
)
def test_status_errors_map_to_one_line_with_a_fix(
    openai_server: FakeDeepSeek, rag_chain: Runnable, status: int, problem: str, fix: str, attempts: int
) -> None:
    openai_server.fail(status)
    error = mapped(failure(rag_chain))
    assert problem in error.problem
    assert fix in error.fix
    assert openai_server.url in error.problem
    assert len(openai_server.chat_requests()) == attempts


def test_wrong_key_message_carries_no_part_of_any_key(
    openai_server: FakeDeepSeek, settings: Settings
) -> None:
    wrong = "sk-wrong-key-abcd9876"
    wrong_settings = settings.model_copy(update={"deepseek_api_key": SecretStr(wrong)})
    chain = build_rag_chain(KeywordRetriever(docs=[]), settings=wrong_settings)
    exc = failure(chain)
    assert "****9876" in str(exc.__cause__)  # DeepSeek echoes the key's tail (kept only in the chained error)...
    assert isinstance(exc, LLMError)  # ...the project's error, the one a host app catches, does not
    error = mapped(exc)
    assert error is exc and "401" in str(error)
    assert "9876" not in str(error) and "sk-" not in str(error)
    assert openai_server.api_key not in str(error)


def test_unknown_model_quotes_deepseeks_hint(openai_server: FakeDeepSeek, rag_chain: Runnable) -> None:
    with pytest.raises(Exception) as info:
        rag_chain.invoke({"question": "recall?"}, config={"configurable": {"model": "deepseek-coder-9000"}})
    error = mapped(info.value)
    assert "400 Invalid Format: Model Not Exist" in error.problem


def test_bad_temperature_quotes_deepseeks_hint(openai_server: FakeDeepSeek, rag_chain: Runnable) -> None:
    with pytest.raises(Exception) as info:
        rag_chain.invoke({"question": "recall?"}, config={"configurable": {"temperature": 3.5}})
    error = mapped(info.value)
    assert "422 Invalid Parameters: Invalid temperature 3.5" in error.problem


def test_hang_becomes_a_timeout_after_retries(
    openai_server: FakeDeepSeek, retriever: KeywordRetriever, settings: Settings
) -> None:
    openai_server.delay(5)
    fast = settings.model_copy(update={"deepseek_timeout": 0.3, "deepseek_max_retries": 1})
    error = mapped(failure(build_rag_chain(retriever, settings=fast)))
    assert "did not answer in time" in error.problem
    assert "DEEPSEEK_TIMEOUT" in error.fix
    assert len(openai_server.chat_requests()) == 2


def test_keepalive_only_stream_times_out_in_async(
    openai_server: FakeDeepSeek, retriever: KeywordRetriever, settings: Settings
) -> None:
    """A busy DeepSeek sends only `: keep-alive`: the read timeout never fires, the chunk timeout does."""
    openai_server.keepalive(3)
    chain = build_rag_chain(retriever, settings=settings.model_copy(update={"deepseek_timeout": 0.5}))

    async def consume() -> None:
        async for _ in chain.astream({"question": "Where does Milvus store data?"}):
            pass

    with pytest.raises(Exception) as info:
        asyncio.run(consume())
    assert "did not answer in time" in mapped(info.value).problem


def test_error_in_the_middle_of_a_stream(openai_server: FakeDeepSeek, rag_chain: Runnable) -> None:
    openai_server.break_stream(after_chunks=3)
    received = []
    with pytest.raises(Exception) as info:
        for chunk in rag_chain.stream({"question": "Where does Milvus store data?"}):
            received.append(chunk)
    assert sum(1 for c in received if "answer" in c) == 3
    assert "failed in the middle of the answer" in mapped(info.value).problem


def test_connection_refused(retriever: KeywordRetriever, settings: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    closed = settings.model_copy(update={"deepseek_base_url": url, "deepseek_max_retries": 0})
    error = mapped(failure(build_rag_chain(retriever, settings=closed)))
    assert error.problem == f"connection refused by {url}"
    assert "DEEPSEEK_BASE_URL" in error.fix


def test_unknown_host(retriever: KeywordRetriever, settings: Settings) -> None:
    unknown = settings.model_copy(
        update={"deepseek_base_url": "http://api.deepseek.invalid", "deepseek_max_retries": 0}
    )
    error = mapped(failure(build_rag_chain(retriever, settings=unknown)))
    assert error.problem == "cannot resolve the host of DEEPSEEK_BASE_URL (http://api.deepseek.invalid)"


def test_other_exceptions_are_not_llm_errors() -> None:
    assert to_llm_error(ValueError("no")) is None
    assert to_llm_error(TimeoutError("milvus")) is None
