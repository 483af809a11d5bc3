"""Hostile questions and misdirected model endpoints, as a user meets them: bytes that are not UTF-8 in argv or
on stdin, a base URL that is some other HTTP server, and the Python API's errors (never a piece of the key)."""

from __future__ import annotations

import pytest

from config.settings import get_settings
from tests.reliability.support import SEED, ask, seed_answered
from tests.support.net import LocalHTTPServer, QuietHandler

BAD = b"How is data stored in \xff\xfe milvus?"


@pytest.fixture
def with_model(faq_index, openai_server, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(faq_index))
    monkeypatch.setenv("DEEPSEEK_BASE_URL", openai_server.url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", openai_server.api_key)
    monkeypatch.setenv("DEEPSEEK_MAX_RETRIES", "0")
    return openai_server


def replaced_or_refused(result) -> bool:
    """Decoded with replacement (answered, exit 0) or refused with one line (exit 2); never a traceback."""
    assert "Traceback" not in result.stderr, result
    if result.returncode == 2:
        assert "UTF-8" in result.error_line()
        return False
    assert result.returncode == 0, result
    return True


def test_non_utf8_bytes_in_the_argv_question_without_a_model(faq_index, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(faq_index))
    result = ask("--retrieve-only", "--json", BAD)
    if replaced_or_refused(result):
        assert seed_answered(result)


def test_non_utf8_bytes_in_the_argv_question_with_a_model(with_model):
    result = ask(BAD)
    if replaced_or_refused(result):
        assert "Sources:" in result.stdout and "en/faq/product_faq.md" in result.stdout


def test_the_interactive_session_survives_a_question_that_is_not_utf8(with_model):
    result = ask(stdin=BAD + b"\n" + SEED.encode() + b"\n")
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    # the good question after the bad one was answered, from the right passage
    assert "en/faq/product_faq.md" in result.stdout
    assert any(SEED in r.text("user") for r in with_model.chat_requests())


def test_the_interactive_retrieval_session_survives_it_too(faq_index, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(faq_index))
    result = ask("--retrieve-only", stdin=BAD + b"\n" + SEED.encode() + b"\n")
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    assert "Milvus deals with two types of data" in result.stdout


class _SomeOtherServer(QuietHandler):
    """An HTTP server that is not an OpenAI-style API: GET answers, POST gets the stdlib's 501."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.send_json(200, {"service": "something else"})


class SomeOtherServer(LocalHTTPServer):
    def start(self) -> SomeOtherServer:
        self._serve(_SomeOtherServer)
        return self

    @property
    def url(self) -> str:
        return self._base_url()


def test_a_base_url_that_does_not_speak_the_api_is_called_that(faq_index, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(faq_index))
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test-0000000000000000")
    monkeypatch.setenv("DEEPSEEK_MAX_RETRIES", "0")
    with SomeOtherServer() as other:
        url = other.url
        monkeypatch.setenv("DEEPSEEK_BASE_URL", url)
        result = ask(SEED)
    assert result.returncode == 1, result
    line = result.error_line()
    assert "status.deepseek.com" not in line and "server error" not in line.lower()  # not a DeepSeek outage
    assert url.removeprefix("http://") in line and "DEEPSEEK_BASE_URL" in line


def test_the_python_api_raises_the_projects_error_without_any_part_of_the_key(openai_server):
    import openai
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda

    from chains import build_rag_chain
    from config.errors import RagError

    wrong = "sk-wrong-key-4821-9876"
    settings = get_settings(deepseek_api_key=wrong, deepseek_base_url=openai_server.url, deepseek_max_retries=0)
    passage = Document(
        "Milvus deals with two types of data, inserted data and metadata.",
        metadata={"source": "en/faq/product_faq.md", "heading": "Where does Milvus store data?", "score": 0.9},
    )
    chain = build_rag_chain(retriever=RunnableLambda(lambda _: [passage]), settings=settings)
    for call in (chain.invoke, lambda inputs: list(chain.stream(inputs))):
        with pytest.raises(RagError) as info:
            call({"question": SEED})
        error = info.value
        assert error.problem and error.fix
        assert isinstance(error.__cause__, openai.AuthenticationError)  # the original, chained
        for text in (str(error), error.problem, error.fix, *map(str, error.args)):
            assert "9876" not in text and wrong not in text  # DeepSeek echoes the key's last four characters
