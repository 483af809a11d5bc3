"""The fake DeepSeek's tool calls, through the real ChatOpenAI: what the agent example relies on."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

from chains import build_llm
from config.settings import Settings
from tests.support.openai_server import FakeDeepSeek


@tool
def milvus_docs(question: str) -> str:
    """Answers a question from the Milvus documentation."""
    return "Milvus keeps metadata in etcd [1]."


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_offered_a_tool_calls_it_then_answers_from_its_result(
    openai_server: FakeDeepSeek, settings: Settings, stream: bool
) -> None:
    model = build_llm(settings).bind_tools([milvus_docs])
    messages: list = [HumanMessage("Where is the metadata kept?")]
    if stream:
        chunks = list(model.stream(messages))
        call = chunks[0]
        for chunk in chunks[1:]:
            call += chunk
    else:
        call = model.invoke(messages)
    (tool_call,) = call.tool_calls
    assert tool_call["name"] == "milvus_docs" and tool_call["args"] == {"question": "Where is the metadata kept?"}

    messages += [call, ToolMessage(milvus_docs.invoke(tool_call["args"]), tool_call_id=tool_call["id"])]
    final = model.invoke(messages)
    assert final.tool_calls == []
    assert final.content == "According to milvus_docs: Milvus keeps metadata in etcd [1]."


def test_without_tools_nothing_changes(openai_server: FakeDeepSeek, settings: Settings) -> None:
    assert build_llm(settings).invoke("hello").content == "Echo: hello"
