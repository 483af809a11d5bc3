"""A local stand-in for the DeepSeek chat API, spoken over real HTTP on 127.0.0.1.

api.deepseek.com is unreachable from the tests, so this server answers the way DeepSeek does on the wire:
`POST /chat/completions` (and `/v1/chat/completions`), JSON with `usage`, SSE streams with `: keep-alive`
comments and a usage chunk, `reasoning_content` for `deepseek-reasoner`, and DeepSeek's error bodies and
status codes. The real `openai` client and `ChatOpenAI` talk to it unchanged, so retries, timeouts, headers
and stream parsing are exercised for real.

Replies are computed from the request, so a test can tell what reached the model:
- a RAG prompt (`<context>` with numbered passages and `<question>`) gets a sentence citing [1] that repeats
  words of passage [1]; with no passages it says the context does not contain the answer;
- a prompt whose system message asks for a "standalone question" gets one built from the follow-up and the
  last user turn of the conversation;
- a request that offers `tools` gets a call of the first tool (or the one `tool_choice` names), every
  required string argument set to the last user message; once the last message is that tool's result, the
  reply quotes it;
- anything else is echoed.

Scenarios (each takes `times=None` for "every request" or a count, and `match=` to pick requests):
`fail(status)`, `delay(seconds)`, `keepalive(seconds)`, `break_stream(after_chunks)`,
`pause_stream(after_chunks)` and `answer_with(text or callable)`. Every request is recorded in `requests`.

Stdlib only, so any test can use it. As a pytest plugin this module provides the `openai_server` fixture.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.net import LocalHTTPServer, QuietHandler

DEFAULT_API_KEY = "sk-fake-deepseek-0123456789abcdef"
MODELS = ("deepseek-chat", "deepseek-reasoner")
CHAT_PATHS = ("/chat/completions", "/v1/chat/completions")

# DeepSeek's documented error codes, with the body fields it sends for each.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("Invalid Format", "invalid_request_error"),
    401: ("Authentication Fails", "authentication_error"),
    402: ("Insufficient Balance", "unknown_error"),
    404: ("Not Found", "invalid_request_error"),
    422: ("Invalid Parameters", "invalid_request_error"),
    429: ("Rate Limit Reached", "rate_limit_error"),
    500: ("Server Error", "server_error"),
    503: ("Server Overloaded", "server_error"),
}

REASONING_PREFIX = "Thinking it over before answering:"


@dataclass
class RecordedRequest:
    """One request as the server saw it; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    received_at: float

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        return messages if isinstance(messages, list) else []

    def text(self, role: str) -> str:
        """All message text of one role, joined: what the model was shown."""
        return "\n".join(_content_text(m.get("content")) for m in self.messages if m.get("role") == role)

    @property
    def is_rewrite(self) -> bool:
        """A query-rewrite request (a follow-up or a question in another language), not an answer request."""
        return "search query" in self.text("system").lower()


Match = Callable[[RecordedRequest], bool] | None
"""Which requests a scenario applies to (all when None), e.g. `lambda r: r.is_rewrite`."""


@dataclass
class _Rule:
    kind: str
    times: int | None
    match: Match
    value: Any = None
    event: threading.Event | None = None


@dataclass
class _Plan:
    """What to do with one request, gathered from the rules that matched it."""

    status: int | None = None
    error_message: str | None = None
    delay: float = 0.0
    keepalive: float = 0.0
    break_after: int | None = None
    pause_after: int | None = None
    pause_event: threading.Event | None = None
    answer: str | Callable[[RecordedRequest], str] | None = None


@dataclass
class FakeDeepSeek(LocalHTTPServer):
    """The server; use as a context manager or call start()/stop()."""

    api_key: str | None = DEFAULT_API_KEY
    retry_after_ms: int | None = 5
    chunk_delay: float = 0.0
    max_lifetime: float = 300.0
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._stopping = threading.Event()
        self.streams_finished = 0

    # --- lifecycle ---
    def start(self) -> FakeDeepSeek:
        self._serve(type("Handler", (_Handler,), {"fake": self}))
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends streams paused mid-answer
        super().stop()

    @property
    def url(self) -> str:
        """The base URL to give the client, like `https://api.deepseek.com`."""
        return self._base_url()

    # --- scenarios ---
    def fail(
        self,
        status: int,
        *,
        times: int | None = None,
        message: str | None = None,
        match: Match = None,
    ) -> None:
        """Answer with DeepSeek's error body for `status` (e.g. 429 twice, then succeed)."""
        self._add(_Rule("fail", times, match, (status, message)))

    def delay(self, seconds: float, *, times: int | None = None, match: Match = None) -> None:
        """Wait before sending anything: longer than the client timeout, it is a hang."""
        self._add(_Rule("delay", times, match, seconds))

    def keepalive(self, seconds: float, *, times: int | None = None, match: Match = None) -> None:
        """Stream only `: keep-alive` comments for `seconds` before any chunk, as a busy DeepSeek does."""
        self._add(_Rule("keepalive", times, match, seconds))

    def break_stream(self, after_chunks: int, *, times: int | None = None, match: Match = None) -> None:
        """Send an error event in the middle of a stream, after `after_chunks` content chunks."""
        self._add(_Rule("break", times, match, after_chunks))

    def pause_stream(self, after_chunks: int, *, match: Match = None) -> threading.Event:
        """Hold the next stream after `after_chunks` content chunks until the returned event is set."""
        event = threading.Event()
        self._add(_Rule("pause", 1, match, after_chunks, event))
        return event

    def answer_with(
        self,
        answer: str | Callable[[RecordedRequest], str],
        *,
        times: int | None = None,
        match: Match = None,
    ) -> None:
        """Reply with this text (or the text a function computes from the request) instead of the default."""
        self._add(_Rule("answer", times, match, answer))

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self.requests.clear()
            self.streams_finished = 0

    # --- what tests read ---
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path in CHAT_PATHS]

    # --- internals ---
    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def _record_and_plan(self, request: RecordedRequest) -> _Plan:
        plan = _Plan()
        with self._lock:
            self.requests.append(request)
            for rule in self._rules:
                if rule.times == 0 or (rule.match is not None and not rule.match(request)):
                    continue
                taken = _apply(plan, rule)
                if taken and rule.times is not None:
                    rule.times -= 1
        return plan

    def _wait(self, seconds: float) -> bool:
        """Sleep that a stop() interrupts; False when the server is stopping."""
        return not self._stopping.wait(seconds)


def _apply(plan: _Plan, rule: _Rule) -> bool:
    """Fold one rule into the plan; the first rule of each kind wins."""
    if rule.kind == "fail" and plan.status is None:
        plan.status, plan.error_message = rule.value
    elif rule.kind == "delay" and not plan.delay:
        plan.delay = rule.value
    elif rule.kind == "keepalive" and not plan.keepalive:
        plan.keepalive = rule.value
    elif rule.kind == "break" and plan.break_after is None:
        plan.break_after = rule.value
    elif rule.kind == "pause" and plan.pause_after is None:
        plan.pause_after, plan.pause_event = rule.value, rule.event
    elif rule.kind == "answer" and plan.answer is None:
        plan.answer = rule.value
    else:
        return False
    return True



class _Handler(QuietHandler):
    fake: FakeDeepSeek
    server_version = "fake-deepseek"

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/models", "/v1/models"):
            self.send_json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]})
        else:
            self._send_error(404, "Not Found")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            method="POST",
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw=raw,
            received_at=time.monotonic(),
        )
        plan = self.fake._record_and_plan(request)
        if plan.delay and not self.fake._wait(plan.delay):
            return
        if self.path not in CHAT_PATHS:
            self._send_error(404, "Not Found")
            return
        if plan.status is not None:
            self._send_error(plan.status, plan.error_message)
            return
        problem = self._check(request)
        if problem is not None:
            self._send_error(*problem)
            return
        reasoning, answer = compose_reply(request, plan.answer)
        tool_call = compose_tool_call(request) if plan.answer is None else None
        try:
            if body.get("stream"):
                self._stream(request, plan, reasoning, answer, tool_call)
            else:
                self._complete(request, reasoning, answer, tool_call)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout, cancelled stream): nothing to answer

    # --- validation, as DeepSeek does it ---
    def _check(self, request: RecordedRequest) -> tuple[int, str] | None:
        auth = request.authorization or ""
        if not auth.startswith("Bearer "):
            return 401, "Authentication Fails (auth header format should be Bearer sk-...)"
        key = auth.removeprefix("Bearer ")
        if self.fake.api_key is not None and key != self.fake.api_key:
            return 401, f"Authentication Fails, Your api key: ****{key[-4:]} is invalid"
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return 400, "Failed to deserialize the JSON body into the target type: missing field `messages`"
        if body.get("model") not in MODELS:
            return 400, "Model Not Exist"
        temperature = body.get("temperature")
        if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 2):
            return 422, f"Invalid temperature {temperature!r}: it must be between 0 and 2"
        if body["model"] == "deepseek-reasoner" and any("reasoning_content" in m for m in body["messages"]):
            return 400, "The reasoning_content of previous turns must not be sent back in messages"
        return None

    # --- responses ---
    def _complete(
        self, request: RecordedRequest, reasoning: str | None, answer: str, tool_call: dict | None = None
    ) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        if tool_call is not None:
            message.update(content="", tool_calls=[tool_call])
        finish = "stop" if tool_call is None else "tool_calls"
        payload = {
            **_envelope(request, "chat.completion"),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": _usage(request, reasoning, answer),
        }
        # DeepSeek keeps a queued non-streaming request alive with blank lines before the JSON.
        self.send_json(200, payload, prefix=b"\n")

    def _stream(
        self,
        request: RecordedRequest,
        plan: _Plan,
        reasoning: str | None,
        answer: str,
        tool_call: dict | None = None,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        fake = self.fake
        deadline = time.monotonic() + plan.keepalive
        while time.monotonic() < deadline:
            self._write_chunk(b": keep-alive\n\n")
            if not fake._wait(min(0.05, plan.keepalive)):
                return
        envelope = _envelope(request, "chat.completion.chunk")
        reasoner = reasoning is not None

        def event(delta: dict[str, Any], finish: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            self._write_chunk(b"data: " + json.dumps({**envelope, "choices": [choice]}).encode() + b"\n\n")

        first: dict[str, Any] = {"role": "assistant", "content": ""}
        if reasoner:
            first = {"role": "assistant", "content": None, "reasoning_content": ""}
        event(first)
        if tool_call is not None:
            function = tool_call["function"]
            event({"tool_calls": [{**tool_call, "index": 0, "function": {**function, "arguments": ""}}]})
            event({"tool_calls": [{"index": 0, "function": {"arguments": function["arguments"]}}]})
            event({"content": None}, finish="tool_calls")
            self._write_chunk(b"data: [DONE]\n\n")
            self._end_chunks()
            return
        for piece in _pieces(reasoning or ""):
            self._write_chunk(b": keep-alive\n\n")
            event({"content": None, "reasoning_content": piece})
        for sent, piece in enumerate(_pieces(answer)):
            if plan.break_after is not None and sent == plan.break_after:
                error = {"message": "Server Error", "type": "server_error", "param": None, "code": None}
                self._write_chunk(b"data: " + json.dumps({"error": error}).encode() + b"\n\n")
                self._end_chunks()
                return
            if plan.pause_event is not None and sent == plan.pause_after and not plan.pause_event.wait(30):
                return
            if fake.chunk_delay and not fake._wait(fake.chunk_delay):
                return
            self._write_chunk(b": keep-alive\n\n")
            event({"content": piece, "reasoning_content": None} if reasoner else {"content": piece})
        event({"content": ""}, finish="stop")
        if (request.body.get("stream_options") or {}).get("include_usage"):
            usage_chunk = {**envelope, "choices": [], "usage": _usage(request, reasoning, answer)}
            self._write_chunk(b"data: " + json.dumps(usage_chunk).encode() + b"\n\n")
        self._write_chunk(b"data: [DONE]\n\n")
        self._end_chunks()
        with fake._lock:
            fake.streams_finished += 1

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


    def _send_error(self, status: int, message: str | None = None) -> None:
        title, kind = ERRORS.get(status, ("Error", "unknown_error"))
        error = {"message": message or title, "type": kind, "param": None, "code": "invalid_request_error"}
        headers = {}
        if status == 429 or status >= 500:
            # Real DeepSeek sends no retry hint; a short one keeps the client's retries fast in tests.
            if self.fake.retry_after_ms is not None:
                headers["retry-after-ms"] = str(self.fake.retry_after_ms)
        self.send_json(status, {"error": error}, headers=headers)


# --- replies computed from the request ---
def compose_reply(
    request: RecordedRequest, override: str | Callable[[RecordedRequest], str] | None = None
) -> tuple[str | None, str]:
    """(reasoning or None, answer) for a request, deterministically."""
    user = _content_text(request.messages[-1].get("content")) if request.messages else ""
    last_user = next(
        (_content_text(m.get("content")) for m in reversed(request.messages) if m.get("role") == "user"), user
    )
    if override is not None:
        answer = override(request) if callable(override) else override
    elif request.messages and request.messages[-1].get("role") == "tool":
        answer = f"According to {_tool_name(request)}: {user}"
    elif request.is_rewrite:
        answer = _standalone(last_user)
    elif "<context>" in last_user:
        answer = _rag_answer(last_user)
    else:
        answer = f"Echo: {last_user}"
    reasoning = None
    if request.model == "deepseek-reasoner":
        topic = _tag(last_user, "question") or last_user[:80]
        reasoning = f"{REASONING_PREFIX} the user wants to know about {topic}."
    return reasoning, answer


def compose_tool_call(request: RecordedRequest) -> dict[str, Any] | None:
    """The tool call for a request that offers tools and has no tool result yet, else None."""
    body = request.body if isinstance(request.body, dict) else {}
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    choice = body.get("tool_choice")
    if not tools or choice == "none" or (request.messages and request.messages[-1].get("role") == "tool"):
        return None
    if isinstance(choice, dict):
        tools = [t for t in tools if t["function"].get("name") == choice.get("function", {}).get("name")] or tools
    function = tools[0]["function"]
    parameters = function.get("parameters") or {}
    properties = parameters.get("properties") or {}
    user = next((_content_text(m.get("content")) for m in reversed(request.messages) if m.get("role") == "user"), "")
    arguments = {
        name: user
        for name in parameters.get("required") or list(properties)
        if (properties.get(name) or {}).get("type", "string") == "string"
    }
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": function["name"], "arguments": json.dumps(arguments)},
    }


def _tool_name(request: RecordedRequest) -> str:
    """The name of the tool whose result ends the conversation (tool messages carry only the call id)."""
    call_id = request.messages[-1].get("tool_call_id")
    for message in reversed(request.messages):
        for call in message.get("tool_calls") or []:
            if call.get("id") == call_id:
                return str(call.get("function", {}).get("name") or "the tool")
    return "the tool"


def parse_passages(prompt: str) -> list[dict[str, str]]:
    """The numbered passages of a `<context>` block: n, header (rest of the `[n]` line), text."""
    parts = re.split(r"^\[(\d+)\][ \t]*", _tag(prompt, "context") or "", flags=re.MULTILINE)
    passages = []
    for n, rest in zip(parts[1::2], parts[2::2], strict=True):
        header, _, text = rest.partition("\n")
        passages.append({"n": n, "header": header.strip(), "text": text.strip()})
    return passages


def _rag_answer(prompt: str) -> str:
    passages = parse_passages(prompt)
    if not passages:
        return "The provided context does not contain the answer to this question."
    words = re.findall(r"[A-Za-z0-9_.'-]+", passages[0]["text"])[:12]
    answer = f"According to the documentation, {' '.join(words)} [1]."
    if len(passages) > 1:
        answer += f" See also [{passages[1]['n']}]."
    return answer


def _standalone(prompt: str) -> str:
    """A rewrite as a model would make it, deterministically: a follow-up gets the last user turn as context;
    tests that need a translation give it with `answer_with(..., match=lambda r: r.is_rewrite)`."""
    follow_up = (_tag(prompt, "question") or prompt).strip()
    conversation = _tag(prompt, "conversation") or ""
    users = re.findall(r"^(?:User|Human):\s*(.+)$", conversation, flags=re.MULTILINE)
    if not users:
        return follow_up
    return f"Regarding '{users[-1].strip()}': {follow_up}"


def _tag(text: str, name: str) -> str | None:
    match = re.search(rf"<{name}>(.*?)</{name}>", text, flags=re.DOTALL)
    return match.group(1).strip() if match else None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _pieces(text: str) -> list[str]:
    """Word-sized stream chunks, so a short answer still arrives in several pieces."""
    return re.findall(r"\S+\s*|\s+", text)


def _envelope(request: RecordedRequest, kind: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "object": kind,
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": "fp_fake_deepseek",
    }


def _usage(request: RecordedRequest, reasoning: str | None, answer: str) -> dict[str, Any]:
    prompt_tokens = sum(len(_content_text(m.get("content")).split()) for m in request.messages)
    reasoning_tokens = len((reasoning or "").split())
    completion_tokens = len(answer.split()) + reasoning_tokens
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": prompt_tokens,
    }
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return usage


@pytest.fixture
def openai_server() -> Iterator[FakeDeepSeek]:
    """A running fake DeepSeek server; `openai_server.url` is the base URL, `.api_key` the accepted key."""
    with FakeDeepSeek() as server:
        yield server
