"""Every fault kind of the loopback server, observed from the client side (httpx or raw sockets)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from support.sse_reader import assemble, parse_sse

from tinyagent.testing import Fault, ModelServer, Reply, ScriptedBrain

TEXT = "The answer is forty-two, as everyone knows."
REQUEST = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "q"}]}


def raw_exchange(server: ModelServer, body: dict | None = None, timeout: float = 3.0
                 ) -> tuple[bytes, list[bytes], BaseException | None]:
    """POST over a plain socket with Connection: close; (head, recv pieces, error)."""
    payload = json.dumps(body or REQUEST).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
                 % (len(payload), payload))
    pieces: list[bytes] = []
    error: BaseException | None = None
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            pieces.append(data)
    except OSError as exc:
        error = exc
    finally:
        sock.close()
    whole = b"".join(pieces)
    head, _, _ = whole.partition(b"\r\n\r\n")
    return head, pieces, error


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body as far as it goes; (data, ended with the 0-size chunk)."""
    out = bytearray()
    pos = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            return bytes(out), False
        size = int(body[pos:line_end], 16)
        if size == 0:
            return bytes(out), True
        out += body[line_end + 2 : line_end + 2 + size]
        if len(body) < line_end + 4 + size:
            return bytes(out), False
        pos = line_end + 4 + size


def body_of(pieces: list[bytes]) -> bytes:
    return b"".join(pieces).partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("status,retry_after", [(429, 2), (500, None), (502, None),
                                                (503, 1.5), (401, None)])
def test_http_status_with_openai_error_body(status: int, retry_after: float | None) -> None:
    with ModelServer(Reply(fault=Fault.http(status, retry_after=retry_after))) as server:
        response = httpx.post(server.url, json=REQUEST, timeout=3.0)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and "type" in error and "code" in error
    if retry_after is None:
        assert "retry-after" not in response.headers
    else:
        assert float(response.headers["retry-after"]) == retry_after


def test_http_status_with_custom_body_and_headers() -> None:
    fault = Fault.http(429, body=b"slow down", headers={"x-ratelimit-reset-requests": "2s"})
    with ModelServer(Reply(fault=fault)) as server:
        response = httpx.post(server.url, json=REQUEST, timeout=3.0)
    assert (response.status_code, response.text) == (429, "slow down")
    assert response.headers["x-ratelimit-reset-requests"] == "2s"


def test_fail_then_succeed_with_a_script() -> None:
    brain = ScriptedBrain([Reply(fault=Fault.http(503)), Reply(text="ok")])
    with ModelServer(brain) as server, httpx.Client(timeout=3.0) as client:
        assert client.post(server.url, json=REQUEST).status_code == 503
        second = client.post(server.url, json=REQUEST)
        assert assemble(parse_sse(second.content)).text == "ok"
        third = client.post(server.url, json=REQUEST)
    assert third.status_code == 500 and "2 turn(s)" in third.json()["error"]["message"]


def test_drop_closes_mid_body() -> None:
    with ModelServer(Reply(text=TEXT, chunk_chars=5, fault=Fault.drop(3))) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(server.url, json=REQUEST, timeout=3.0)
        _, pieces, error = raw_exchange(server)
        record = server.requests[-1]
    data, complete = dechunk(body_of(pieces))
    assert error is None and not complete
    events = parse_sse(data)
    assert len(events) == 3 and assemble(events).text == TEXT[:10]
    assert record.events_written == 3 and not record.response_complete.is_set()
    assert not record.client_closed.is_set()  # the server hung up, not the client


def test_drop_with_reset_sends_rst() -> None:
    with ModelServer(Reply(text=TEXT, fault=Fault.drop(2, reset=True))) as server:
        _, pieces, error = raw_exchange(server)
    assert isinstance(error, ConnectionResetError)
    assert not dechunk(body_of(pieces))[1]


def test_stall_mid_body_hits_the_client_read_timeout() -> None:
    with ModelServer(Reply(text=TEXT, chunk_chars=4, fault=Fault.stall(4))) as server:
        received = bytearray()
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout), httpx.stream(
                "POST", server.url, json=REQUEST, timeout=0.5) as response:
            assert response.status_code == 200
            for piece in response.iter_bytes():
                received += piece
        assert time.monotonic() - started < 3.0
        assert server.wait_for_disconnect(3.0)  # the client gave up and closed
    events = parse_sse(bytes(received))
    assert len(events) == 4 and assemble(events).text == TEXT[:12]


def test_short_stall_then_the_stream_completes() -> None:
    with ModelServer(Reply(text=TEXT, fault=Fault.stall(2, seconds=0.2))) as server:
        result = assemble(parse_sse(httpx.post(server.url, json=REQUEST, timeout=3.0).content))
    assert result.text == TEXT and result.done


def test_stall_before_headers_hits_the_first_byte_timeout() -> None:
    with ModelServer(Reply(text=TEXT, fault=Fault.stall_before_headers())) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url, json=REQUEST, timeout=0.5)
        assert server.wait_for_disconnect(3.0)
        record = server.requests[-1]
    assert record.status is None and record.bytes_written == 0


def test_malformed_chunk_is_invalid_json_in_place() -> None:
    with ModelServer(Reply(text=TEXT, fault=Fault.malformed(2))) as server:
        events = parse_sse(httpx.post(server.url, json=REQUEST, timeout=3.0).content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[2].data)
    assert events[1].json["choices"][0]["delta"] == {"content": TEXT[:8]}
    assert events[-1].data == "[DONE]"  # the rest of the stream follows the bad line


@pytest.mark.parametrize("shape,check", [
    ("openrouter", lambda p: p["error"]["code"] == 502
     and p["choices"][0]["finish_reason"] == "error"),
    ("openai", lambda p: p["error"]["message"] == "Upstream overloaded"),
    ("vllm", lambda p: p["object"] == "error" and p["code"] == 502),
    ("minimax", lambda p: p["base_resp"] == {"status_code": 502,
                                             "status_msg": "Upstream overloaded"}),
])
def test_inband_error_shapes(shape: str, check: object) -> None:
    with ModelServer(Reply(text=TEXT, chunk_chars=13, fault=Fault.inband_error(2, shape=shape))
                     ) as server:
        response = httpx.post(server.url, json=REQUEST, timeout=3.0)
    events = parse_sse(response.content)
    assert response.status_code == 200 and len(events) == 3
    assert events[1].json["choices"][0]["delta"]["content"] == TEXT[:13]
    assert callable(check) and check(events[2].json)
    assert b"[DONE]" not in response.content


def test_event_error_shape() -> None:
    fault = Fault.event_error(1, "boom", code=500)
    with ModelServer(Reply(text=TEXT, fault=fault)) as server:
        body = httpx.post(server.url, json=REQUEST, timeout=3.0).content
    events = parse_sse(body)
    assert b"event: error\ndata: " in body
    assert events[-1].event == "error" and events[-1].json["error"]["message"] == "boom"


def test_multibyte_split_reconstructs_exactly() -> None:
    text = "Grüße 🙂 日本語のテキスト — 👩‍💻 done"
    with ModelServer(Reply(text=text, chunk_chars=6, fault=Fault.multibyte_split())) as server:
        _, pieces, error = raw_exchange(server)
        via_httpx = httpx.post(server.url, json=REQUEST, timeout=3.0)
    assert error is None
    data, complete = dechunk(body_of(pieces))
    assert complete and assemble(parse_sse(data)).text == text
    # the bytes really arrived split inside characters: after some read, the body so far
    # ends in the middle of a UTF-8 sequence
    def ends_inside_a_character(count: int) -> bool:
        so_far, _ = dechunk(body_of(pieces[:count]))
        try:
            so_far.decode("utf-8")
        except UnicodeDecodeError as exc:
            return exc.reason == "unexpected end of data"
        return False

    assert any(ends_inside_a_character(k) for k in range(1, len(pieces) + 1))
    assert assemble(parse_sse(via_httpx.content)).text == text


def test_truncated_stream_has_no_finish_and_no_done() -> None:
    with ModelServer([Reply(text=TEXT, fault=Fault.truncate()),
                      Reply(text=TEXT, chunk_chars=4, fault=Fault.truncate(after=3))]) as server:
        full = httpx.post(server.url, json=REQUEST, timeout=3.0)
        short = httpx.post(server.url, json=REQUEST, timeout=3.0)
    whole = assemble(parse_sse(full.content))
    assert whole.text == TEXT and whole.finish_reason is None and not whole.done
    assert assemble(parse_sse(short.content)).text == TEXT[:8]


def test_json_answer_to_a_streaming_request() -> None:
    with ModelServer(Reply(text=TEXT, fault=Fault.json_reply())) as server:
        response = httpx.post(server.url, json=REQUEST, timeout=3.0)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == TEXT


def test_fault_validation_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="HTTP status"):
        Fault.http(42)
    with pytest.raises(ValueError, match="after"):
        Fault.drop(-1)
