"""Questions in other languages and follow-ups: one rewrite call into an English search query, the answer in
the asker's language. The real ChatOpenAI over HTTP against the tests' OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from langchain_core.runnables import Runnable

from chains import LLMError, build_rag_chain
from config.settings import Settings
from tests.chains.conftest import KeywordRetriever
from tests.support.openai_server import FakeDeepSeek, RecordedRequest

PT_QUESTION = "Onde o Milvus guarda os dados inseridos?"
ENGLISH_QUERY = "Where does Milvus store inserted data?"
STORAGE_HEADING = "Product FAQ > Where does Milvus store data?"


def tag(request: RecordedRequest, name: str) -> str:
    match = re.search(rf"<{name}>\s*(.*?)\s*</{name}>", request.text("user"), re.DOTALL)
    assert match, f"no <{name}> in the prompt"
    return match.group(1)


def is_rewrite(request: RecordedRequest) -> bool:
    return request.is_rewrite


@pytest.fixture
def translating(openai_server: FakeDeepSeek) -> FakeDeepSeek:
    """The server answers the rewrite request as a model would: the English query, nothing else."""
    openai_server.answer_with(ENGLISH_QUERY, match=is_rewrite)
    return openai_server


def test_a_portuguese_question_is_searched_in_english_and_answered_in_portuguese(
    translating: FakeDeepSeek, rag_chain: Runnable, retriever: KeywordRetriever
) -> None:
    result = rag_chain.invoke({"question": PT_QUESTION})

    rewrite, answer = translating.chat_requests()
    assert rewrite.is_rewrite and not answer.is_rewrite
    assert tag(rewrite, "question") == PT_QUESTION
    assert "<context>" not in rewrite.text("user")  # made without the passages
    assert "tools" not in rewrite.body and "response_format" not in rewrite.body  # plain text, any server
    assert retriever.queries == [(ENGLISH_QUERY, 3)]
    assert result["search_query"] == ENGLISH_QUERY
    assert result["sources"][0]["heading"] == STORAGE_HEADING
    assert tag(answer, "question") == PT_QUESTION  # the answer call holds the question as asked...
    assert "in Portuguese" in answer.text("system")  # ...and says which language to answer in
    assert tag(answer, "search_query") == ENGLISH_QUERY


def test_an_english_first_question_costs_one_model_call(
    openai_server: FakeDeepSeek, rag_chain: Runnable, retriever: KeywordRetriever
) -> None:
    result = rag_chain.invoke({"question": "What is the maximum vector dimension in pymilvus (dim)?"})
    (answer,) = openai_server.chat_requests()
    assert not answer.is_rewrite
    assert result["search_query"] == "What is the maximum vector dimension in pymilvus (dim)?"
    assert "the language the question is written in" in answer.text("system")


def test_a_portuguese_follow_up_costs_one_rewrite_call(
    translating: FakeDeepSeek, rag_chain: Runnable, retriever: KeywordRetriever
) -> None:
    history = [("human", "O que afeta o recall?"), ("ai", "O tipo de índice e os parâmetros de busca [1].")]
    translating.answer_with("Where does Milvus store inserted data, besides the index?", match=is_rewrite)
    result = rag_chain.invoke({"question": "E onde ficam os dados?", "chat_history": history})

    rewrite, answer = translating.chat_requests()
    assert rewrite.is_rewrite and not answer.is_rewrite
    assert "User: O que afeta o recall?" in tag(rewrite, "conversation")
    assert retriever.queries == [(result["search_query"], 3)]
    assert result["search_query"].startswith("Where does Milvus store inserted data")


def test_always_rewrites_english_too_and_off_never_rewrites(
    openai_server: FakeDeepSeek, retriever: KeywordRetriever, settings: Settings
) -> None:
    openai_server.answer_with("Milvus data storage location", match=is_rewrite)
    always = build_rag_chain(retriever, settings=settings, query_rewrite="always")
    assert always.invoke({"question": "where is data kept?"})["search_query"] == "Milvus data storage location"
    assert [r.is_rewrite for r in openai_server.chat_requests()] == [True, False]

    openai_server.reset()
    off = build_rag_chain(retriever, settings=settings.model_copy(update={"query_rewrite": "off"}))
    history = [("human", "What affects recall?"), ("ai", "The index type [1].")]
    result = off.invoke({"question": PT_QUESTION, "chat_history": history})
    assert result["search_query"] == PT_QUESTION
    assert [r.is_rewrite for r in openai_server.chat_requests()] == [False]


@pytest.mark.parametrize("reply", ["", "   ", "\"\"", "x" * 1500])
def test_an_empty_or_unusable_rewrite_falls_back_to_the_question_with_one_warning(
    openai_server: FakeDeepSeek,
    rag_chain: Runnable,
    retriever: KeywordRetriever,
    caplog: pytest.LogCaptureFixture,
    reply: str,
) -> None:
    openai_server.answer_with(reply, match=is_rewrite)
    with caplog.at_level(logging.WARNING, logger="chains.rag"):
        result = rag_chain.invoke({"question": PT_QUESTION})
    assert result["search_query"] == PT_QUESTION
    assert retriever.queries == [(PT_QUESTION, 3)]
    assert [r.levelno for r in caplog.records if r.name == "chains.rag"] == [logging.WARNING]
    assert result["answer"]  # the question is still answered


def test_the_model_reply_is_tidied_into_a_query(
    openai_server: FakeDeepSeek, rag_chain: Runnable, retriever: KeywordRetriever
) -> None:
    openai_server.answer_with('Search query: "Where does Milvus store inserted data?"\n', match=is_rewrite)
    assert rag_chain.invoke({"question": PT_QUESTION})["search_query"] == ENGLISH_QUERY


@pytest.mark.parametrize(("status", "problem"), [(401, "rejected the API key"), (402, "insufficient balance")])
def test_a_failed_rewrite_gives_the_same_one_line_error_as_an_answer(
    openai_server: FakeDeepSeek, rag_chain: Runnable, status: int, problem: str
) -> None:
    openai_server.fail(status, match=is_rewrite)
    with pytest.raises(LLMError) as info:
        rag_chain.invoke({"question": PT_QUESTION})
    assert problem in str(info.value) and "\n" not in str(info.value)
    assert [r.is_rewrite for r in openai_server.chat_requests()] == [True]  # no answer call after it


def test_streaming_and_async_carry_the_search_query(translating: FakeDeepSeek, rag_chain: Runnable) -> None:
    chunks = list(rag_chain.stream({"question": PT_QUESTION}))
    assert [c["search_query"] for c in chunks if "search_query" in c] == [ENGLISH_QUERY]
    assert "".join(c.get("answer", "") for c in chunks)
    result = asyncio.run(rag_chain.ainvoke({"question": "Como o Milvus armazena os vetores?"}))
    assert result["search_query"] == ENGLISH_QUERY


@pytest.mark.parametrize(
    "question",
    ["🙂🙂🙂", "???", "SELECT * FROM t;", "נתונים איפה נשמרים", "数据" * 1000, "where is mmap.enabled set? 🙂"],
)
def test_odd_questions_get_a_search_not_a_traceback(
    translating: FakeDeepSeek, rag_chain: Runnable, question: str
) -> None:
    result = rag_chain.invoke({"question": question})
    assert isinstance(result["search_query"], str) and result["search_query"]
    assert isinstance(result["answer"], str)


def test_a_custom_rewrite_prompt_is_used(
    openai_server: FakeDeepSeek, retriever: KeywordRetriever, settings: Settings
) -> None:
    from langchain_core.prompts import ChatPromptTemplate

    from config.errors import ConfigError

    custom = ChatPromptTemplate.from_messages(
        [("system", "Write a search query in English."), ("human", "{conversation}\n{question}")]
    )
    openai_server.answer_with(ENGLISH_QUERY, match=lambda r: "Write a search query" in r.text("system"))
    rag = build_rag_chain(retriever, settings=settings, rewrite_prompt=custom)
    assert rag.invoke({"question": PT_QUESTION})["search_query"] == ENGLISH_QUERY
    with pytest.raises(ConfigError, match="conversation"):
        build_rag_chain(
            retriever, settings=settings, rewrite_prompt=ChatPromptTemplate.from_messages([("human", "{question}")])
        )


def test_the_rewriter_alone_serves_host_apps(translating: FakeDeepSeek, settings: Settings) -> None:
    from chains import build_query_rewriter

    rewriter = build_query_rewriter(settings=settings)
    assert rewriter.invoke({"question": PT_QUESTION}) == ENGLISH_QUERY
    assert rewriter.invoke(PT_QUESTION) == ENGLISH_QUERY
    assert [r.is_rewrite for r in translating.chat_requests()] == [True, True]
