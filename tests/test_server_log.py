"""The request log, client-disconnect detection and scripted brains of the loopback server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from support.sse_reader import assemble, parse_sse

from tinyagent.testing import Fault, ModelServer, Reply, ScriptedBrain, ScriptExhausted


def post(server: ModelServer, content: str = "hi", **headers: str) -> httpx.Response:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": content}]}
    return httpx.post(server.url, json=body, headers=headers, timeout=3.0)


def text_of(response: httpx.Response) -> str:
    return assemble(parse_sse(response.content)).text


def test_requests_are_recorded_with_headers_body_and_raw_bytes() -> None:
    with ModelServer(Reply(text="ok")) as server:
        post(server, "first", Authorization="Bearer sk-test", **{"X-Title": "demo"})
        post(server, "second")
        first, second = server.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.headers["AUTHORIZATION"] == "Bearer sk-test" and "x-title" in first.headers
    assert first.body["messages"][0]["content"] == "first"
    assert first.messages == first.body["messages"]
    assert first.raw.startswith(b"{") and b'"first"' in first.raw
    assert first.received_at <= second.received_at
    assert first.status == 200 and first.response_complete.is_set()
    assert first.bytes_written > 0 and not first.client_closed.is_set()


def test_clear_and_wait_for_requests() -> None:
    with ModelServer(Reply(text="ok")) as server:
        post(server)
        assert len(server.wait_for_requests(1)) == 1
        server.clear_requests()
        assert server.requests == [] and server.last_request is None
        with pytest.raises(TimeoutError, match="expected 1 request"):
            server.wait_for_requests(1, timeout=0.1)


def test_request_log_over_http() -> None:
    with ModelServer(Reply(text="ok")) as server:
        post(server, "logged", Authorization="Bearer k")
        log = httpx.get(f"http://127.0.0.1:{server.port}/_requests", timeout=3.0).json()
        assert len(log) == 1
        assert log[0]["headers"]["authorization"] == "Bearer k"
        assert log[0]["body"]["messages"][0]["content"] == "logged"
        assert log[0]["response_complete"] is True
        httpx.delete(f"http://127.0.0.1:{server.port}/_requests", timeout=3.0)
        assert server.requests == []


def test_client_disconnect_is_detected_and_writing_stops() -> None:
    reply = Reply(text="tick " * 40, chunk_chars=5, delay=0.1)
    with ModelServer(reply) as server:
        body = {"model": "m", "stream": True, "messages": []}
        with httpx.stream("POST", server.url, json=body, timeout=3.0) as response:
            next(response.iter_bytes())
        assert server.wait_for_disconnect(3.0)
        record = server.requests[-1]
        written = record.events_written
        assert record.closed_at is not None and record.closed_at >= record.received_at
        assert not record.response_complete.is_set()
        time.sleep(0.3)  # three more pacing intervals: nothing more may be written
        assert record.events_written == written < 40


def test_wait_for_disconnect_is_false_for_a_completed_response() -> None:
    with ModelServer(Reply(text="done")) as server:
        post(server)
        assert not server.wait_for_disconnect(0.2)


def test_scripted_turns_in_order_then_exhausted() -> None:
    brain = ScriptedBrain(["one", Reply(text="two"), {"text": "three"},
                           lambda request: f"four:{request['messages'][0]['content']}"])
    with ModelServer(brain) as server:
        answers = [text_of(post(server, "x")) for _ in range(4)]
        assert brain.remaining == 0 and brain.calls == 4
        exhausted = post(server)
        record = server.last_request
    assert answers == ["one", "two", "three", "four:x"]
    assert exhausted.status_code == 500
    assert "ScriptExhausted" in exhausted.json()["error"]["message"]
    assert record is not None and record.error and "request #5" in record.error


def test_scripted_repeat_mode_and_direct_call() -> None:
    brain = ScriptedBrain(["a", "b"], when_exhausted="repeat")
    assert [brain({}) for _ in range(4)] == ["a", "b", "b", "b"]
    assert brain.remaining is None
    strict = ScriptedBrain(["only"])
    assert strict({}) == "only"
    with pytest.raises(ScriptExhausted):
        strict({})


def test_scripted_brain_rejects_bad_scripts() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ScriptedBrain([])
    with pytest.raises(TypeError, match="scripted turn"):
        ScriptedBrain([42])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        ScriptedBrain("not a list")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown Reply fields"):
        ScriptedBrain([{"txt": "typo"}])


def test_failing_brain_answers_500_with_the_reason() -> None:
    def broken(request: dict[str, Any]) -> Reply:
        raise KeyError("tools")

    with ModelServer(broken) as server:
        response = post(server)
    assert response.status_code == 500
    assert response.json()["error"]["message"] == "KeyError: 'tools'"


def test_async_brain_and_switching_brains() -> None:
    async def slow_brain(request: dict[str, Any]) -> str:
        await asyncio.sleep(0.01)
        return "async answer"

    with ModelServer(slow_brain) as server:
        assert text_of(post(server)) == "async answer"
        server.brain = ScriptedBrain(["switched"])
        assert text_of(post(server)) == "switched"


def test_restart_is_refused_and_stop_is_idempotent() -> None:
    server = ModelServer(Reply(text="x")).start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    finally:
        server.stop()
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.port}/v1/models", timeout=1.0)


def test_stop_ends_stalled_streams_promptly() -> None:
    server = ModelServer(Reply(text="x", fault=Fault.stall(1))).start()
    body = {"model": "m", "stream": True, "messages": []}
    with httpx.stream("POST", server.url, json=body, timeout=3.0) as response:
        chunks = response.iter_bytes()
        assert b"assistant" in next(chunks)
        started = time.monotonic()
        server.stop()
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in chunks:
                pass
    assert time.monotonic() - started < 3.0
    record = server.requests[-1]
    assert not record.client_closed.is_set()  # the server ended it, not the client
