"""The HTTP API as its clients see it: the real `openai` client, plain HTTP for /api/ask and /health, the token,
bad bodies, DeepSeek failing behind the server, and 50 users at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.server.conftest import GOLD_HEADING, QUESTION, TOKEN, RunningServer, read_events

SOURCE_KEYS = {"n", "source", "heading", "score", "stage", "text"}  # stage: hybrid here (which search scored it)


def rewrite_and_answer(deepseek):
    """A follow-up costs two model calls: the question made standalone from the conversation, then the answer."""
    *before, answer = deepseek.chat_requests()
    assert "<context>" in answer.text("user")
    assert len(before) == 1 and "<context>" not in before[0].text("user")
    return before[0], answer


def answer_requests(deepseek) -> list:
    return [r for r in deepseek.chat_requests() if "<context>" in r.text("user")]


def openai_client(server: RunningServer, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.token, max_retries=0, **kwargs)


# --- the OpenAI-compatible API, through the real openai client ---
def test_openai_client_gets_a_cited_answer_with_sources(server, deepseek):
    completion = openai_client(server).chat.completions.create(
        model="milvus-docs", messages=[{"role": "user", "content": QUESTION}]
    )
    assert completion.model == "milvus-docs"
    assert "[1]" in completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    sources = completion.model_extra["sources"]
    assert sources[0]["heading"] == GOLD_HEADING and set(sources[0]) == SOURCE_KEYS
    assert QUESTION in answer_requests(deepseek)[-1].text("user")


def test_openai_client_streams_and_gets_the_sources_last(server, deepseek):
    stream = openai_client(server).chat.completions.create(
        model="deepseek-chat", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len([c for c in chunks if c.choices[0].delta.content]) > 3  # it arrived in pieces
    assert "[1]" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["sources"][0]["heading"] == GOLD_HEADING
    assert all("sources" not in (c.model_extra or {}) for c in chunks[:-1])


def test_earlier_turns_make_the_follow_up_standalone(server, deepseek):
    completion = openai_client(server).chat.completions.create(
        model="deepseek-chat",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "In object storage [1]."},
            {"role": "user", "content": "and where is the metadata kept?"},
        ],
    )
    assert completion.choices[0].message.content
    requests = deepseek.chat_requests()
    assert [r.is_rewrite for r in requests] == [True, False]
    assert QUESTION in requests[0].text("user") and "metadata" in requests[0].text("user")
    assert "You are a helpful assistant." not in requests[1].text("system")


def test_models_lists_the_model(server):
    assert [m.id for m in openai_client(server).models.list()] == ["deepseek-chat"]


# --- /api/ask ---
def test_ask_returns_answer_sources_and_search_query(server, deepseek):
    response = server.post("/api/ask", {"question": QUESTION, "k": 2})
    assert response.status_code == 200
    body = response.json()
    assert "[1]" in body["answer"] and body["search_query"].strip()
    assert len(body["sources"]) == 2 and body["sources"][0]["heading"] == GOLD_HEADING
    assert set(body["sources"][0]) == SOURCE_KEYS


def test_ask_streams_tokens_then_sources(server, deepseek):
    expected = server.post("/api/ask", {"question": QUESTION}).json()
    with server.client() as client, client.stream("POST", "/api/ask", json={"question": QUESTION, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = read_events(r)
    names = [name for name, _ in events]
    assert names == ["token"] * (len(names) - 1) + ["sources"] and len(names) > 3
    assert "".join(data["text"] for name, data in events if name == "token") == expected["answer"]
    assert events[-1][1] == {"sources": expected["sources"], "search_query": expected["search_query"]}


def test_ask_follow_up_uses_the_history(server, deepseek):
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "In object storage [1]."}]
    response = server.post("/api/ask", {"question": "and where is the metadata kept?", "chat_history": history})
    assert response.status_code == 200
    assert [r.is_rewrite for r in deepseek.chat_requests()] == [True, False]


def test_retrieve_only_never_calls_the_model(server, deepseek):
    body = server.post("/api/ask", {"question": QUESTION, "retrieve_only": True, "k": 4}).json()
    assert body["answer"] is None and len(body["sources"]) == 4
    assert body["sources"][0]["heading"] == GOLD_HEADING
    assert deepseek.requests == []


def test_filter_narrows_the_passages(server, deepseek):
    body = server.post(
        "/api/ask",
        {"question": QUESTION, "retrieve_only": True, "k": 5, "filter": 'source like "en/faq/operational%"'},
    ).json()
    assert body["sources"] and {s["source"] for s in body["sources"]} == {"en/faq/operational_faq.md"}


def test_health_needs_no_token(server):
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["collection"] == "my_rag_collection" and body["chunks"] > 50
    assert body["embedding_model"].startswith("all-MiniLM-L6-v2")


# --- the token ---
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/ask"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models")]
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_without_the_token_every_api_endpoint_refuses(server, deepseek, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.request(method, f"{server.url}{path}", json={"question": QUESTION}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert "RAG_SERVER_TOKEN" in response.json()["error"]["message"]
    assert deepseek.requests == []


def test_the_openai_client_with_a_wrong_key_gets_401(server):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_the_page_loads_without_the_token(server):
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "<form" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(f"{server.url}/static/app.js").status_code == 200


# --- bad requests: JSON errors with one line each ---
def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert "\n" not in error["message"] and "Traceback" not in error["message"]
    return error["message"]


def test_a_body_over_one_megabyte_is_refused(server, deepseek):
    question = "x" * 1_100_000
    assert "larger than 1 MB" in error_of(server.post("/api/ask", {"question": question}), 413)

    def chunks():  # no Content-Length: the server counts what arrives
        yield b'{"question": "'
        for _ in range(11):
            yield b"y" * 100_000
        yield b'"}'

    with server.client() as client:
        response = client.post("/api/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert "larger than 1 MB" in error_of(response, 413)
    assert deepseek.requests == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"question": "why? " * 500}, "the limit is 2000"),
        ({"question": "   "}, "the question is empty"),
        ({"question": QUESTION, "k": 0}, "k must be between 1 and 50"),
        ({"question": QUESTION, "k": 51}, "k must be between 1 and 50"),
        ({"question": QUESTION, "filter": "source ==="}, "is not a valid Milvus expression"),
        ({"k": 3}, "question: Field required"),
        ({"question": 42}, "question: Input should be a valid string"),
        ({"question": QUESTION, "colour": "blue"}, "colour: Extra inputs are not permitted"),
        ([QUESTION], "Input should be a valid dictionary"),
    ],
)
def test_bad_ask_bodies_are_400_with_one_line(server, deepseek, body, expected):
    assert expected in error_of(server.post("/api/ask", body), 400)
    assert deepseek.requests == []


def test_malformed_json_is_400(server):
    with server.client() as client:
        response = client.post("/api/ask", content=b'{"question": ', headers={"Content-Type": "application/json"})
    assert "not valid JSON" in error_of(response, 400)


def test_openai_client_bad_requests_raise_bad_request(server, deepseek):
    client = openai_client(server)
    with pytest.raises(openai.BadRequestError, match="end the messages with the user's question"):
        client.chat.completions.create(model="m", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="m", messages=[])
    assert deepseek.requests == []


def test_unknown_paths_are_json_404(server):
    assert "Not Found" in error_of(httpx.get(f"{server.url}/v1/nothing", headers=server.headers), 404)


# --- DeepSeek failing behind the server ---
def test_a_rejected_deepseek_key_is_502_with_the_cli_line_and_no_key(server, deepseek):
    deepseek.fail(401, message=f"Authentication Fails, Your api key: ****{deepseek.api_key[-4:]} is invalid")
    response = server.post("/api/ask", {"question": QUESTION})
    message = error_of(response, 502)
    assert "rejected the API key" in message and "DEEPSEEK_API_KEY" in message
    assert deepseek.api_key not in response.text and deepseek.api_key[-4:] not in response.text

    with pytest.raises(openai.APIStatusError) as raised:
        openai_client(server).chat.completions.create(
            model="m", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
    assert raised.value.status_code == 502 and "rejected the API key" in raised.value.message
    assert deepseek.api_key[-4:] not in str(raised.value.body)


def test_a_deepseek_timeout_is_504(server, deepseek):
    deepseek.delay(30, times=1)
    response = server.post("/api/ask", {"question": QUESTION, "stream": True})
    assert "did not answer in time" in error_of(response, 504)


def test_a_stream_that_breaks_midway_ends_with_an_error_event(server, deepseek):
    deepseek.break_stream(3)
    with server.client() as client, client.stream("POST", "/api/ask", json={"question": QUESTION, "stream": True}) as r:
        assert r.status_code == 200
        events = read_events(r)
    assert [name for name, _ in events] == ["token"] * 3 + ["error"]
    assert "failed in the middle of the answer" in events[-1][1]["error"]["message"]

    deepseek.break_stream(2)
    stream = openai_client(server).chat.completions.create(
        model="m", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    with pytest.raises(openai.APIError, match="failed in the middle"):
        list(stream)


def test_no_secret_reaches_the_server_log(server, deepseek):
    deepseek.fail(401, message=f"Authentication Fails, Your api key: ****{deepseek.api_key[-4:]} is invalid")
    server.post("/api/ask", {"question": f"is {deepseek.api_key} my key?"})
    deepseek.reset()
    server.post("/api/ask", {"question": QUESTION})
    log = server.log_text()
    assert deepseek.api_key not in log and f"****{deepseek.api_key[-4:]}" not in log and TOKEN not in log


# --- many users at once ---
def test_fifty_concurrent_requests_all_succeed(server, deepseek):
    def one(i: int) -> httpx.Response:
        body = {"question": f"{QUESTION} ({i})", "stream": i % 2 == 1, "retrieve_only": i % 5 == 0}
        with server.client() as client:
            if body["stream"]:
                with client.stream("POST", "/api/ask", json=body) as r:
                    r.read()
                    return r
            return client.post("/api/ask", json=body)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(one, range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    for i, r in enumerate(responses):
        if i % 2 == 1:
            assert "event: sources" in r.text
        elif i % 5 != 0:
            assert "[1]" in r.json()["answer"]
    assert len(answer_requests(deepseek)) == len([i for i in range(50) if i % 5 != 0])


def test_many_openai_clients_at_once(server, deepseek):
    client = openai_client(server)

    def one(i: int) -> str:
        return client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"{QUESTION} #{i}"}]
        ).choices[0].message.content

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    assert all("[1]" in a for a in answers)

