"""The experimental anthropic-messages path (docs/wire.md#anthropic-path) through the real
extension, against a small raw-socket Anthropic Messages server (the loopback model server speaks
OpenAI only)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from support.core_inputs import model_for as _model_for
from support.core_inputs import options as _options

from tinyagent import _alchemy

KEY = "sk-ant-test-0123456789"
CONTEXT: dict[str, Any] = {
    "system_prompt": "Be brief.",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "time in Oslo?"}]}],
    "tools": [{"name": "get_time", "description": "Current time",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
}


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


TEXT_AND_TOOL = [
    sse("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 12}}}),
    sse("content_block_start", {"type": "content_block_start", "index": 0,
                                "content_block": {"type": "text", "text": ""}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": "Checking "}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": "now."}}),
    sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
    sse("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
        "type": "input_json_delta", "partial_json": "{\"city\": \"Oslo\"}"}}),
    sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
    sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                          "usage": {"output_tokens": 7}}),
    sse("message_stop", {"type": "message_stop"}),
]


class RawServer:
    """Accepts connections on 127.0.0.1 and hands each parsed request to ``handler``."""

    def __init__(self, handler: Callable[[socket.socket, bytes, dict[str, Any]], None]) -> None:
        self.handler = handler
        self.requests: list[tuple[bytes, dict[str, Any]]] = []
        self.closed_by_client = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append((head, json.loads(body)))
            try:
                self.handler(conn, head, json.loads(body))
            except OSError:
                self.closed_by_client.set()

    def close(self) -> None:
        self.sock.close()


def respond_sse(events: list[bytes], pause: float = 0.0) -> Callable[..., None]:
    def handler(conn: socket.socket, head: bytes, body: dict[str, Any]) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Connection: close\r\n\r\n")
        for event in events:
            conn.sendall(event)
            if pause:
                time.sleep(pause)
    return handler






def test_text_and_tool_call_stream() -> None:
    server = RawServer(respond_sse(TEXT_AND_TOOL))
    try:
        out = _alchemy.collect_openai_completions(model_for(server.url), CONTEXT, options())
    finally:
        server.close()
    types = [e["type"] for e in out["events"]]
    assert types == ["start", "text_start", "text_delta", "text_delta", "text_end",
                     "tool_call_start", "tool_call_delta", "tool_call_end", "done"]
    final = out["final_message"]
    assert final["stop_reason"] == "tool_calls" and final["api"] == "anthropic-messages"
    assert final["content"] == [
        {"type": "text", "text": "Checking now.", "text_signature": None},
        {"type": "tool_call", "id": "toolu_1", "name": "get_time", "arguments": {"city": "Oslo"}},
    ]
    assert final["usage"]["input"] == 12 and final["usage"]["output"] == 7
    head, body = server.requests[0]
    assert head.startswith(b"POST /v1/messages HTTP/1.1")
    assert f"x-api-key: {KEY}".encode() in head.lower()  # the key is lower-case
    assert body["model"] == "claude-test" and body["system"] == "Be brief."
    assert body["tools"][0]["name"] == "get_time"


def test_http_429_is_retried_then_succeeds_and_errors_are_scrubbed() -> None:
    calls = 0

    def handler(conn: socket.socket, head: bytes, body: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            payload = json.dumps({"type": "error", "error": {"type": "rate_limit_error",
                                                              "message": f"slow down {KEY}"}})
            conn.sendall(b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(payload), payload.encode()))
        else:
            respond_sse(TEXT_AND_TOOL)(conn, head, body)

    server = RawServer(handler)
    try:
        out = _alchemy.collect_openai_completions(model_for(server.url), CONTEXT, options())
    finally:
        server.close()
    retry = out["events"][0]
    assert retry["type"] == "retry" and retry["attempt"] == 1
    assert retry["reason"] == "HTTP 429 Too Many Requests: slow down ***"
    assert out["final_message"]["stop_reason"] == "tool_calls"


def test_http_500_is_an_error_with_the_contract_message() -> None:
    def handler(conn: socket.socket, head: bytes, body: dict[str, Any]) -> None:
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n"
                     b"Connection: close\r\n\r\nboom")

    server = RawServer(handler)
    try:
        out = _alchemy.collect_openai_completions(model_for(server.url), CONTEXT, options())
    finally:
        server.close()
    assert [e["type"] for e in out["events"]] == ["error"]
    assert out["final_message"]["error_message"] == "HTTP 500 Internal Server Error: boom"
    assert len(server.requests) == 1


def test_cancel_closes_the_connection() -> None:
    server = RawServer(respond_sse(TEXT_AND_TOOL * 50, pause=0.2))
    try:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        while handle.next_event()["type"] != "text_delta":
            pass
        handle.cancel()
        final = handle.result()
        assert final["stop_reason"] == "aborted"
        assert final["error_message"] == "Request was aborted"
        assert server.closed_by_client.wait(3.0)
    finally:
        server.close()


def test_idle_timeout() -> None:
    def stall(conn: socket.socket, head: bytes, body: dict[str, Any]) -> None:
        respond_sse(TEXT_AND_TOOL[:3])(conn, head, body)
        time.sleep(3)

    server = RawServer(stall)
    try:
        started = time.monotonic()
        out = _alchemy.collect_openai_completions(model_for(server.url), CONTEXT,
                                                  options(idle_timeout=0.5))
    finally:
        server.close()
    assert time.monotonic() - started < 3.0
    final = out["final_message"]
    assert final["error_message"] == "stream idle for 0.5s (idle timeout)"
    assert final["content"][0]["text"] == "Checking "


def test_stream_threads_end_with_their_streams() -> None:
    """R14 on this path: the per-stream thread and runtime are gone once the stream is over."""
    import os

    server = RawServer(respond_sse(TEXT_AND_TOOL * 20, pause=0.1))
    fast = RawServer(respond_sse(TEXT_AND_TOOL))
    try:
        baseline = len(os.listdir("/proc/self/task"))
        finished = _alchemy.openai_completions_stream(model_for(fast.url), CONTEXT, options())
        cancelled = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        while cancelled.next_event()["type"] != "text_delta":
            pass
        cancelled.cancel()
        assert cancelled.result()["stop_reason"] == "aborted"
        assert finished.result()["stop_reason"] == "tool_calls"
        deadline = time.monotonic() + 3
        while len(os.listdir("/proc/self/task")) > baseline and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(os.listdir("/proc/self/task")) <= baseline
    finally:
        server.close()
        fast.close()


def model_for(url: str) -> dict[str, Any]:
    return _model_for(url, id="claude-test", provider="anthropic", api="anthropic-messages")


def options(**extra: Any) -> dict[str, Any]:
    return _options(api_key=KEY, **extra)
