"""A stub LLM server on loopback answering the OpenAI Chat Completions, Anthropic Messages and Ollama chat APIs.

Each request names its call in the last message ("call-17"); the stub answers that call's scripted
attempts in turn (an HTTP status each, 200 for an answer), after an artificial delay, and keeps a record
of every answer it gave: what the ledger must show is computed from this record, not from the script.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_CALL = re.compile(r"call-(\d+)")


@dataclass
class Call:
    """What the stub is told to do for one client call: the status of each attempt, and the usage it reports."""

    number: int
    attempts: list[int]
    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_write: int = 0
    delay_s: float = 0.005
    by_model: dict[str, int] = field(default_factory=dict)  # a model always answered with this status


@dataclass
class Answer:
    """One HTTP answer the stub gave."""

    call: int
    api: str
    model: str
    status: int
    stream: bool
    usage_sent: bool
    input_tokens: int
    output_tokens: int
    cache_read: int
    cache_write: int
    delay_s: float


@dataclass
class StubLLM:
    """The stub's script and its record of answers, shared with the server thread."""

    calls: dict[int, Call] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def plan(self, call: Call) -> str:
        """Script a call; return the prompt text that names it."""
        self.calls[call.number] = call
        return f"call-{call.number}: translate 'good morning' to Spanish"

    def final_answers(self) -> dict[int, Answer]:
        """Return the last answer given to each call: what the client finally saw."""
        return {answer.call: answer for answer in self.answers}


def _error_body(api: str, status: int) -> dict[str, Any]:
    if api == "anthropic":
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": f"stub {status}"}}
    if api == "ollama":
        return {"error": f"stub {status}"}
    return {"error": {"message": f"stub {status}", "type": "server_error", "code": str(status)}}


class _Handler(BaseHTTPRequestHandler):
    stub: StubLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        api = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic", "/api/chat": "ollama"}.get(self.path)
        if api is None:
            self._send(404, {"error": "no such path"})
            return
        messages = body.get("messages", [])
        content = messages[-1]["content"] if messages else ""
        if isinstance(content, list):
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        found = _CALL.search(str(content))
        if found is None or int(found.group(1)) not in self.stub.calls:
            self._send(400, {"error": "unscripted call"})
            return
        call = self.stub.calls[int(found.group(1))]
        stream = bool(body.get("stream", api == "ollama"))
        with self.stub.lock:
            attempt = sum(1 for a in self.stub.answers if a.call == call.number)
            status = call.by_model.get(body.get("model", ""), call.attempts[min(attempt, len(call.attempts) - 1)])
            usage_sent = status == 200 and (
                not stream or api != "openai" or bool((body.get("stream_options") or {}).get("include_usage"))
            )
            self.stub.answers.append(
                Answer(
                    call.number,
                    api,
                    body.get("model", ""),
                    status,
                    stream,
                    usage_sent,
                    call.input_tokens,
                    call.output_tokens,
                    call.cache_read,
                    call.cache_write,
                    call.delay_s,
                )
            )
        time.sleep(call.delay_s)
        if status != 200:
            self._send(status, _error_body(api, status), {"retry-after-ms": "1", "x-should-retry": "true"})
            return
        model = body.get("model", "")
        if stream:
            self._stream(api, model, call, usage_sent)
        else:
            self._send(200, _full_answer(api, model, call))

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, api: str, model: str, call: Call, usage_sent: bool) -> None:
        chunks = list(_stream_chunks(api, model, call, usage_sent))
        if api == "ollama":
            data = b"".join(json.dumps(c).encode() + b"\n" for c in chunks)
            content_type = "application/x-ndjson"
        elif api == "anthropic":
            data = b"".join(f"event: {c['type']}\ndata: {json.dumps(c)}\n\n".encode() for c in chunks)
            content_type = "text/event-stream"
        else:
            data = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"
            content_type = "text/event-stream"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


_TEXT = "buenos días"


def _full_answer(api: str, model: str, call: Call) -> dict[str, Any]:
    if api == "anthropic":
        return {
            "id": f"msg_{call.number}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": _TEXT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": call.input_tokens,
                "output_tokens": call.output_tokens,
                "cache_read_input_tokens": call.cache_read,
                "cache_creation_input_tokens": call.cache_write,
            },
        }
    if api == "ollama":
        return {
            "model": model,
            "created_at": "2026-11-24T10:00:00Z",
            "message": {"role": "assistant", "content": _TEXT},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": call.input_tokens,
            "eval_count": call.output_tokens,
        }
    return {
        "id": f"chatcmpl-{call.number}",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": _TEXT}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": call.input_tokens,
            "completion_tokens": call.output_tokens,
            "total_tokens": call.input_tokens + call.output_tokens,
        },
    }


def _stream_chunks(api: str, model: str, call: Call, usage_sent: bool) -> Iterator[dict[str, Any]]:
    if api == "anthropic":
        yield {
            "type": "message_start",
            "message": {
                "id": f"msg_{call.number}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": call.input_tokens,
                    "output_tokens": 1,
                    "cache_read_input_tokens": call.cache_read,
                    "cache_creation_input_tokens": call.cache_write,
                },
            },
        }
        yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        yield {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": _TEXT}}
        yield {"type": "content_block_stop", "index": 0}
        yield {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": call.output_tokens},
        }
        yield {"type": "message_stop"}
        return
    if api == "ollama":
        yield {
            "model": model,
            "created_at": "2026-11-24T10:00:00Z",
            "message": {"role": "assistant", "content": _TEXT},
            "done": False,
        }
        yield {
            "model": model,
            "created_at": "2026-11-24T10:00:00Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": call.input_tokens,
            "eval_count": call.output_tokens,
        }
        return
    base = {
        "id": f"chatcmpl-{call.number}",
        "object": "chat.completion.chunk",
        "created": 1_790_000_000,
        "model": model,
    }
    yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": _TEXT}, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    if usage_sent:
        yield {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": call.input_tokens,
                "completion_tokens": call.output_tokens,
                "total_tokens": call.input_tokens + call.output_tokens,
            },
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up on a kept-alive connection (clients do, between calls)."""


@contextmanager
def stub_llm_server() -> Iterator[StubLLM]:
    """Serve a StubLLM on a free loopback port; yield it with its base URL set."""
    stub = StubLLM()
    handler = type("Handler", (_Handler,), {"stub": stub})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
