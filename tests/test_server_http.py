"""The loopback server's HTTP/1.1 layer over raw sockets: bodies, pipelining, bad requests."""

from __future__ import annotations

import json
import socket

from tinyagent.testing import ModelServer, Reply

BODY = json.dumps({"model": "m", "stream": False, "messages": [{"role": "user", "content": "é"}]},
                  ensure_ascii=False).encode("utf-8")


def exchange(server: ModelServer, data: bytes) -> bytes:
    """Send ``data`` and read until the server closes the connection.

    A server that refuses a request may close with unread request bytes pending, which the
    kernel turns into a reset after the answer: that also counts as the end.
    """
    received = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=3.0) as sock:
        try:
            sock.sendall(data)
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


def post_head(length: int | None = None, extra: bytes = b"") -> bytes:
    size = b"Content-Length: %d\r\n" % length if length is not None else b""
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + size + extra + b"\r\n")


def test_chunked_request_body_is_decoded() -> None:
    halves = BODY[:10], BODY[10:]
    chunked = b"".join(b"%x\r\n%b\r\n" % (len(h), h) for h in halves) + b"0\r\n\r\n"
    with ModelServer(Reply(text="ok")) as server:
        answer = exchange(server, post_head(extra=b"Transfer-Encoding: chunked\r\n"
                                                  b"Connection: close\r\n") + chunked)
        record = server.requests[0]
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert record.raw == BODY and record.body["messages"][0]["content"] == "é"


def test_body_arriving_in_pieces_and_pipelined_requests() -> None:
    first = post_head(len(BODY)) + BODY
    second = post_head(len(BODY), b"Connection: close\r\n") + BODY
    with ModelServer(["one", "two"]) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=3.0) as sock:
            sock.sendall(first[:30])  # the head is cut: nothing may be answered yet
            sock.sendall(first[30:] + second)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        records = server.requests
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert answer.index(b'"content":"one"') < answer.index(b'"content":"two"')
    assert [r.connection_id for r in records] == [1, 1]


def test_bad_request_line_is_answered_400_and_closed() -> None:
    with ModelServer() as server:
        answer = exchange(server, b"NONSENSE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in answer and b"bad request line" in answer


def test_bad_content_length_and_oversized_head() -> None:
    with ModelServer() as server:
        bad_length = exchange(server, post_head(extra=b"Content-Length: lots\r\n"))
        huge = exchange(server, b"GET /v1/models HTTP/1.1\r\nX-Padding: " + b"a" * 70_000)
    assert bad_length.startswith(b"HTTP/1.1 400 ")
    assert huge.startswith(b"HTTP/1.1 431 ")


def test_http10_client_gets_the_connection_closed() -> None:
    with ModelServer(Reply(text="ok")) as server:
        answer = exchange(server, post_head(len(BODY)).replace(b"HTTP/1.1", b"HTTP/1.0") + BODY)
    assert b"Connection: close" in answer and b'"content":"ok"' in answer
