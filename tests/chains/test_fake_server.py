"""The fake speaks DeepSeek's wire protocol: checked with raw HTTP, below what the openai client hides."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from tests.support.openai_server import DEFAULT_API_KEY, REASONING_PREFIX, FakeDeepSeek


def post(server: FakeDeepSeek, body: dict, *, path: str = "/chat/completions", key: str = DEFAULT_API_KEY):
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(
        "POST", path, json.dumps(body), {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    response = conn.getresponse()
    data = response.read().decode()
    conn.close()
    return response, data


def chat(model: str = "deepseek-chat", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}


def sse_events(data: str) -> tuple[list[dict], list[str]]:
    events, comments = [], []
    for block in data.split("\n\n"):
        for line in block.splitlines():
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line.removeprefix("data: ")))
    return events, comments


def test_json_completion_with_usage_on_both_paths(openai_server: FakeDeepSeek) -> None:
    for path in ("/chat/completions", "/v1/chat/completions"):
        response, data = post(openai_server, chat(), path=path)
        body = json.loads(data)
        assert response.status == 200
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "Echo: hello"}
        assert (
            body["usage"]["total_tokens"]
            == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
        )


def test_stream_has_keepalives_chunks_usage_and_done(openai_server: FakeDeepSeek) -> None:
    response, data = post(openai_server, chat(stream=True, stream_options={"include_usage": True}))
    events, comments = sse_events(data)
    assert response.getheader("Content-Type").startswith("text/event-stream")
    assert data.rstrip().endswith("data: [DONE]")
    assert ": keep-alive" in comments
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text == "Echo: hello"
    assert sum(1 for e in events if e["choices"] and e["choices"][0]["delta"].get("content")) >= 2
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] > 0


def test_stream_without_include_usage_sends_no_usage_chunk(openai_server: FakeDeepSeek) -> None:
    _, data = post(openai_server, chat(stream=True))
    events, _ = sse_events(data)
    assert all(e["choices"] for e in events)


def test_reasoner_streams_reasoning_before_content(openai_server: FakeDeepSeek) -> None:
    _, data = post(openai_server, chat("deepseek-reasoner", stream=True))
    deltas = [e["choices"][0]["delta"] for e in sse_events(data)[0] if e["choices"]]
    kinds = [
        "r" if d.get("reasoning_content") else "c"
        for d in deltas
        if d.get("reasoning_content") or d.get("content")
    ]
    assert "".join(kinds).startswith("r") and "".join(kinds).endswith("c")
    assert "".join(kinds) == "r" * kinds.count("r") + "c" * kinds.count("c")
    assert "".join(d.get("reasoning_content") or "" for d in deltas).startswith(REASONING_PREFIX)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Invalid Format"),
        (401, "Authentication Fails"),
        (402, "Insufficient Balance"),
        (422, "Invalid Parameters"),
        (429, "Rate Limit Reached"),
        (500, "Server Error"),
        (503, "Server Overloaded"),
    ],
)
def test_scripted_errors_use_deepseeks_body(openai_server: FakeDeepSeek, status: int, message: str) -> None:
    openai_server.fail(status, times=1)
    response, data = post(openai_server, chat())
    error = json.loads(data)["error"]
    assert response.status == status
    assert error["message"] == message
    assert set(error) == {"message", "type", "param", "code"}
    assert post(openai_server, chat())[0].status == 200


def test_validates_like_deepseek(openai_server: FakeDeepSeek) -> None:
    assert post(openai_server, chat(), key="sk-wrong-1234")[0].status == 401
    assert "****1234" in post(openai_server, chat(), key="sk-wrong-1234")[1]
    assert post(openai_server, chat("gpt-4o"))[0].status == 400
    assert post(openai_server, chat(temperature=2.5))[0].status == 422
    history = [
        {"role": "assistant", "content": "x", "reasoning_content": "y"},
        {"role": "user", "content": "z"},
    ]
    assert post(openai_server, {"model": "deepseek-reasoner", "messages": history})[0].status == 400


def test_records_headers_and_body(openai_server: FakeDeepSeek) -> None:
    post(openai_server, chat(temperature=0.3))
    (request,) = openai_server.chat_requests()
    assert request.authorization == f"Bearer {DEFAULT_API_KEY}"
    assert request.body["temperature"] == 0.3
    assert request.text("user") == "hello"


def test_stops_itself_after_its_lifetime() -> None:
    server = FakeDeepSeek(max_lifetime=0.2).start()
    host, port = server.url.removeprefix("http://").split(":")
    time.sleep(0.6)
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection(host, int(port), timeout=2).connect()


def test_answer_with_applies_to_matching_requests_only(openai_server: FakeDeepSeek) -> None:
    openai_server.answer_with(lambda r: f"model was {r.model}", match=lambda r: r.model != "deepseek-chat")
    reasoner = json.loads(post(openai_server, chat("deepseek-reasoner"))[1])["choices"][0]["message"]
    assert reasoner["content"] == "model was deepseek-reasoner"
    assert reasoner["reasoning_content"].startswith(REASONING_PREFIX)
    assert json.loads(post(openai_server, chat())[1])["choices"][0]["message"]["content"] == "Echo: hello"
