"""Cancellation (R1), drop = cancel, Ctrl-C in blocking calls (R15) and the released GIL (R10),
observed from the loopback server's side of the connection."""

from __future__ import annotations

import gc
import signal
import threading
import time
from typing import Any

import pytest
from support.core_inputs import context, model_for, options

from tinyagent import _alchemy
from tinyagent.testing import Fault, ModelServer, Reply, ScriptedBrain

CONTEXT = context()
SLOW = Reply(text=" ".join(f"w{i}" for i in range(40)), chunking="words", delay=0.5)


def read_all(handle: Any) -> list[dict[str, Any]]:
    events = []
    while (event := handle.next_event()) is not None:
        events.append(event)
    return events


def test_cancel_mid_stream_closes_the_connection_and_ends_aborted() -> None:
    with ModelServer(ScriptedBrain([SLOW])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        while handle.next_event()["type"] != "text_delta":
            pass
        cancelled_at = time.monotonic()
        handle.cancel()
        assert server.wait_for_disconnect(timeout=3.0)
        assert time.monotonic() - cancelled_at < 3.0
        record = server.requests[-1]
        assert record.closed_at is not None
        written = record.events_written
        rest = read_all(handle)
        time.sleep(0.6)  # one more token interval: nothing more is written to a closed socket
        assert record.events_written == written
    assert rest[-1]["type"] == "error" and rest[-1]["reason"] == "aborted"
    final = handle.result()
    assert final["stop_reason"] == "aborted"
    assert final["error_message"] == "Request was aborted"
    assert final["content"][0]["text"].startswith("w0")  # text so far is kept
    handle.cancel()  # idempotent
    assert handle.next_event() is None


def test_cancel_while_waiting_for_headers_yields_only_error() -> None:
    reply = Reply(text="never", fault=Fault.stall_before_headers(None))
    with ModelServer(ScriptedBrain([reply])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        server.wait_for_requests(1)
        threading.Timer(0.2, handle.cancel).start()
        events = read_all(handle)
        assert server.wait_for_disconnect(timeout=3.0)
    assert [e["type"] for e in events] == ["error"]
    assert events[0]["reason"] == "aborted"
    assert events[0]["error"]["error_message"] == "Request was aborted"


def test_cancel_from_another_thread_wakes_a_blocked_reader() -> None:
    with ModelServer(ScriptedBrain([SLOW])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        threading.Timer(0.3, handle.cancel).start()
        started = time.monotonic()
        final = handle.result()
        assert time.monotonic() - started < 3.0
        assert final["stop_reason"] == "aborted"
        assert server.wait_for_disconnect(timeout=3.0)


def test_cancel_after_done_changes_nothing() -> None:
    with ModelServer(ScriptedBrain([Reply(text="fine")])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        final = handle.result()
        handle.cancel()
        events = read_all(handle)
    assert events[-1]["type"] == "done"
    assert handle.result() == final and final["stop_reason"] == "stop"


def test_dropping_the_handle_cancels_the_stream() -> None:
    with ModelServer(ScriptedBrain([SLOW])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        assert handle.next_event()["type"] == "start"
        del handle
        gc.collect()
        assert server.wait_for_disconnect(timeout=3.0)


@pytest.fixture
def default_sigint() -> Any:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_main_after(seconds: float) -> threading.Timer:
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(seconds, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals are delivered to the main thread")
def test_ctrl_c_during_collect_raises_and_closes_the_connection(default_sigint: Any) -> None:
    with ModelServer(ScriptedBrain([SLOW])) as server:
        timer = _interrupt_main_after(0.5)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            _alchemy.collect_openai_completions(model_for(server.url), CONTEXT, options())
        assert time.monotonic() - started < 3.0
        timer.join()
        assert server.wait_for_disconnect(timeout=3.0)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals are delivered to the main thread")
def test_ctrl_c_during_next_event_and_result(default_sigint: Any) -> None:
    reply = Reply(text="never", fault=Fault.stall_before_headers(None))
    with ModelServer(ScriptedBrain([reply, reply])) as server:
        for method in ("next_event", "result"):
            handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
            server.wait_for_requests(1 if method == "next_event" else 2)
            timer = _interrupt_main_after(0.3)
            with pytest.raises(KeyboardInterrupt):
                getattr(handle, method)()
            timer.join()
            assert server.wait_for_disconnect(timeout=3.0)
            # the stream was cancelled: it ends aborted
            assert handle.result()["stop_reason"] == "aborted"


def test_other_threads_run_while_next_event_blocks() -> None:
    reply = Reply(text="late", fault=Fault.stall_before_headers(1.0))
    counter = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    with ModelServer(ScriptedBrain([reply])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        thread = threading.Thread(target=spin)
        thread.start()
        try:
            before = counter
            assert handle.next_event()["type"] == "start"  # blocks about a second
            progressed = counter - before
        finally:
            stop.set()
            thread.join()
    assert progressed > 10_000
