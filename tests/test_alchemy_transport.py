"""The owned transport through the real extension: timeouts (R2), HTTP errors with the key
scrubbed (R4), retries (R17), connection reuse (R12), proxies with the loopback exemption (R13),
no leaked threads or fds (R14) and many concurrent streams (R11)."""

from __future__ import annotations

import gc
import os
import socket
import sys
import threading
import time
from typing import Any

import pytest
from support.core_inputs import context, model_for, options

from tinyagent import _alchemy
from tinyagent.testing import Fault, ModelServer, Reply, ScriptedBrain

CONTEXT = context()
KEY = "sk-test-secret-1234567890"


def collect(url: str, **opts: Any) -> dict[str, Any]:
    return _alchemy.collect_openai_completions(model_for(url), CONTEXT, options(**opts))


def types_of(out: dict[str, Any]) -> list[str]:
    return [e["type"] for e in out["events"]]


# -- timeouts (R2) ---------------------------------------------------------------------------

def test_first_byte_timeout() -> None:
    reply = Reply(text="never", fault=Fault.stall_before_headers(None))
    with ModelServer(ScriptedBrain([reply])) as server:
        started = time.monotonic()
        out = collect(server.url, first_byte_timeout=0.5, max_retries=0)
    assert time.monotonic() - started < 3.0
    assert types_of(out) == ["error"]
    assert out["final_message"]["error_message"] == (
        "no response from 127.0.0.1 within 0.5s (first-byte timeout)")


def test_idle_timeout_mid_body_keeps_the_text() -> None:
    reply = Reply(text="partial answer here", chunk_chars=4, fault=Fault.stall(after=3))
    with ModelServer(ScriptedBrain([reply])) as server:
        started = time.monotonic()
        out = collect(server.url, idle_timeout=0.5)
        assert server.wait_for_disconnect(timeout=3.0)
    assert time.monotonic() - started < 3.0
    final = out["final_message"]
    assert final["error_message"] == "stream idle for 0.5s (idle timeout)"
    assert final["stop_reason"] == "error"
    assert final["content"][0]["text"].startswith("part")


def test_connection_refused_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = collect(f"http://127.0.0.1:{port}/v1/chat/completions", max_retries=0)
    message = out["final_message"]["error_message"]
    assert message.startswith(f"connection to http://127.0.0.1:{port} failed: "), message
    assert types_of(out) == ["error"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="relies on Linux SYN drops")
def test_connect_timeout() -> None:
    """A listener whose accept queue is full drops new SYNs: the connect never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        started = time.monotonic()
        out = collect(f"http://127.0.0.1:{port}/v1/chat/completions", connect_timeout=0.5,
                      max_retries=0)
        assert time.monotonic() - started < 3.0
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert out["final_message"]["error_message"] == "connect timeout after 0.5s (127.0.0.1)"


# -- HTTP errors (R4) ------------------------------------------------------------------------

def test_http_error_message_with_the_key_scrubbed() -> None:
    replies = [
        Reply(fault=Fault.http(401, f"Incorrect API key provided: {KEY}")),
        Reply(fault=Fault.http(400, body=f"bad request for key {KEY}")),
    ]
    with ModelServer(ScriptedBrain(replies)) as server:
        first = collect(server.url, api_key=KEY)
        second = collect(server.url, api_key=KEY)
        assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert first["final_message"]["error_message"] == (
        "HTTP 401 Unauthorized: Incorrect API key provided: ***")
    assert second["final_message"]["error_message"] == "HTTP 400 Bad Request: bad request for key ***"
    assert types_of(first) == ["error"]


# -- retries (R17) ---------------------------------------------------------------------------

def test_503_then_200_is_one_clean_stream_with_one_retry_event_first() -> None:
    with ModelServer(ScriptedBrain([Reply(fault=Fault.http(503)), Reply(text="recovered")])) as server:
        out = collect(server.url)
        assert len(server.requests) == 2
    types = types_of(out)
    assert types[0] == "retry" and types[1] == "start" and types.count("retry") == 1
    retry = out["events"][0]
    assert retry["attempt"] == 1 and retry["reason"] == "HTTP 503 Service Unavailable"
    assert 0 < retry["delay"] <= 30
    assert out["final_message"]["stop_reason"] == "stop"
    assert out["final_message"]["content"][0]["text"] == "recovered"


def test_retry_after_is_honoured(caplog: pytest.LogCaptureFixture) -> None:
    replies = [Reply(fault=Fault.http(429, retry_after=1)), Reply(text="ok")]
    with ModelServer(ScriptedBrain(replies)) as server:
        started = time.monotonic()
        with caplog.at_level("INFO", logger="tinyagent._alchemy"):
            out = collect(server.url)
        elapsed = time.monotonic() - started
        gap = server.requests[1].received_at - server.requests[0].received_at
    assert elapsed >= 1.0 and gap >= 1.0
    assert out["events"][0]["delay"] == 1.0
    assert out["final_message"]["stop_reason"] == "stop"
    assert "HTTP 429 Too Many Requests; retrying in 1.0 s (attempt 1 of 2)" in caplog.messages


def test_500_is_not_retried() -> None:
    with ModelServer(ScriptedBrain([Reply(fault=Fault.http(500)), Reply(text="x")])) as server:
        out = collect(server.url)
        assert len(server.requests) == 1
    assert types_of(out) == ["error"]
    assert out["final_message"]["error_message"].startswith("HTTP 500 Internal Server Error")


def test_exhausted_retries_are_counted_in_the_message() -> None:
    replies = [Reply(fault=Fault.http(502)), Reply(fault=Fault.http(504))]
    with ModelServer(ScriptedBrain(replies)) as server:
        out = collect(server.url, max_retries=1)
        assert len(server.requests) == 2
    assert types_of(out) == ["retry", "error"]
    assert out["final_message"]["error_message"].startswith("HTTP 504 Gateway Timeout")
    assert out["final_message"]["error_message"].endswith(" (after 1 retries)")


def test_max_retries_zero_disables_retries() -> None:
    with ModelServer(ScriptedBrain([Reply(fault=Fault.http(503)), Reply(text="x")])) as server:
        out = collect(server.url, max_retries=0)
        assert len(server.requests) == 1
    assert types_of(out) == ["error"]


def test_mid_stream_drop_is_an_error_not_a_retry() -> None:
    reply = Reply(text="abcdefghijklmnop", chunk_chars=2, fault=Fault.drop(after=4))
    with ModelServer(ScriptedBrain([reply, Reply(text="second")])) as server:
        out = collect(server.url)
        assert len(server.requests) == 1
    assert "retry" not in types_of(out)
    assert out["events"][-1]["type"] == "error"
    assert out["final_message"]["stop_reason"] == "error"
    assert out["final_message"]["content"][0]["text"].startswith("ab")


# -- connections (R12, R13) ------------------------------------------------------------------

def test_two_sequential_requests_reuse_one_connection() -> None:
    with ModelServer(ScriptedBrain([Reply(text="one"), Reply(text="two")])) as server:
        assert collect(server.url)["final_message"]["content"][0]["text"] == "one"
        assert collect(server.url)["final_message"]["content"][0]["text"] == "two"
        first, second = server.requests
        assert first.connection_id == second.connection_id
        assert server.connection_count == 1


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_loopback_is_never_proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{_dead_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with ModelServer(ScriptedBrain([Reply(text="direct")])) as server:
        out = collect(server.url, max_retries=0)
    assert out["final_message"]["content"][0]["text"] == "direct"


def test_proxy_environment_is_honoured_for_other_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A raw proxy records the absolute-form request line and answers 502."""
    seen: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            seen.append(data.split(b"\r\n", 1)[0])
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        out = collect("http://model.example.invalid/v1/chat/completions", max_retries=0)
        thread.join(3)
    finally:
        listener.close()
    assert seen == [b"POST http://model.example.invalid/v1/chat/completions HTTP/1.1"]
    assert out["final_message"]["error_message"] == "HTTP 502 Bad Gateway"


# -- leaks (R14) and concurrency (R11) -------------------------------------------------------

def _counts() -> tuple[int, int]:
    return len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task"))


def _settled(baseline: tuple[int, int], timeout: float = 3.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        now = _counts()
        if (now[0] <= baseline[0] and now[1] <= baseline[1]) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def _stream(url: str, prompt: str) -> Any:
    return _alchemy.openai_completions_stream(model_for(url), context(prompt), options())


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_no_threads_or_fds_outlive_their_streams() -> None:
    replies = {
        "slow": Reply(text=" ".join(["tok"] * 30), chunking="words", delay=0.2),
        "stall": Reply(text="x", fault=Fault.stall_before_headers(None)),
        # The server closes the connection after each complete reply, so no connection stays
        # pooled and every socket left open at the end is one a stream failed to close. (With
        # pooling, how many idle connections the pool keeps is a race: a request can open a
        # second one while the first is still on its way back to the pool, which under load
        # made this test count a pooled connection as a leak.)
        "ok": Reply(text="ok", framing="close"),
    }
    with ModelServer(lambda request: replies[request["messages"][-1]["content"]]) as server:
        # warm-up: the shared runtime and client exist; no connection stays open
        assert _stream(server.url, "ok").result()["stop_reason"] == "stop"
        baseline = _settled(_counts(), timeout=0.5)
        for _ in range(3):
            handle = _stream(server.url, "slow")  # cancelled mid-body
            while handle.next_event()["type"] != "text_delta":
                pass
            handle.cancel()
            assert handle.result()["stop_reason"] == "aborted"
            seen = len(server.requests)
            handle = _stream(server.url, "stall")  # dropped while waiting for headers
            server.wait_for_requests(seen + 1)
            del handle
            for _ in range(3):  # completed
                assert _stream(server.url, "ok").result()["stop_reason"] == "stop"
            # failed to connect
            collect(f"http://127.0.0.1:{_dead_port()}/v1/chat/completions", max_retries=0)
        after = _settled(baseline)
    assert after[0] <= baseline[0], f"fds: {baseline[0]} -> {after[0]}"
    assert after[1] <= baseline[1], f"threads: {baseline[1]} -> {after[1]}"


def test_500_concurrent_streams_complete() -> None:
    with ModelServer(Reply(text="concurrent hello", chunk_chars=4, delay=0.01)) as server:
        handles = [_alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
                   for _ in range(500)]
        finals = [h.result() for h in handles]
    assert len(finals) == 500
    assert all(f["stop_reason"] == "stop" for f in finals), {f["error_message"] for f in finals}
    assert all(f["content"][0]["text"] == "concurrent hello" for f in finals)


def _redirector(status: str, location: str) -> tuple[str, socket.socket]:
    """A one-shot server answering every request with a redirect to ``location``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(f"HTTP/1.1 {status}\r\nLocation: {location}\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions", listener


def test_method_preserving_redirect_is_followed_with_the_body() -> None:
    with ModelServer(ScriptedBrain([Reply(text="moved")])) as server:
        url, listener = _redirector("307 Temporary Redirect", server.url)
        try:
            out = collect(url, max_retries=0)
        finally:
            listener.close()
        assert server.requests[0].method == "POST"
        assert server.requests[0].body["stream"] is True
    assert out["final_message"]["content"][0]["text"] == "moved"


def test_redirect_that_would_drop_the_body_is_an_error() -> None:
    with ModelServer(ScriptedBrain([Reply(text="never")])) as server:
        url, listener = _redirector("302 Found", server.url)
        try:
            out = collect(url, max_retries=0)
        finally:
            listener.close()
        assert server.requests == []
    assert out["final_message"]["error_message"] == "HTTP 302 Found"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_streams_with_its_own_runtime() -> None:
    """multiprocessing forks on Linux: the child must not inherit a runtime without threads."""
    with ModelServer(ScriptedBrain([Reply(text="parent"), Reply(text="child")])) as server:
        assert collect(server.url)["final_message"]["content"][0]["text"] == "parent"
        pid = os.fork()
        if pid == 0:  # child: report through the exit status only
            try:
                out = collect(server.url, max_retries=0)
                ok = out["final_message"]["content"][0]["text"] == "child"
            except BaseException:
                ok = False
            os._exit(0 if ok else 1)
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_in_band_error_after_a_retry_says_so() -> None:
    replies = [Reply(fault=Fault.http(503)),
               Reply(text="partial", fault=Fault.inband_error(after=2, message="Upstream overloaded",
                                                                code=502))]
    with ModelServer(ScriptedBrain(replies)) as server:
        out = collect(server.url)
    assert types_of(out)[0] == "retry"
    assert out["final_message"]["error_message"] == (
        "provider error 502: Upstream overloaded (after 1 retries)")
