"""The batch interface of `tinyagent._alchemy` (docs/design.md): Notifier + attach + drain
4-tuples, driven from an asyncio loop with `add_reader`, as the asyncio bridge uses it."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from support.core_inputs import context, model_for, options

from tinyagent import _alchemy
from tinyagent.testing import ModelServer, Reply, ScriptedBrain, ToolCallSpec

CONTEXT = context()


async def drain_all(handles: dict[int, Any], timeout: float = 30.0) -> dict[int, list[tuple]]:
    """Drain every handle through one Notifier registered with the running loop."""
    loop = asyncio.get_running_loop()
    notifier = _alchemy.Notifier()
    batches: dict[int, list[tuple]] = {token: [] for token in handles}
    done = loop.create_future()
    wakeups = 0

    def on_readable() -> None:
        nonlocal wakeups
        wakeups += 1
        tokens = notifier.take_ready()
        assert len(tokens) == len(set(tokens)), "a token is reported once per take_ready"
        for token in tokens:
            batches[token].extend(handles[token].drain())
        if all(h.finished for h in handles.values()) and not done.done():
            done.set_result(None)

    loop.add_reader(notifier.fileno(), on_readable)
    try:
        for token, handle in handles.items():
            handle.attach(notifier, token)
        await asyncio.wait_for(done, timeout)
    finally:
        loop.remove_reader(notifier.fileno())
    assert wakeups >= 1
    return batches


def test_twenty_thousand_chunks_drained_from_asyncio() -> None:
    text = "abcd" * 20_000
    with ModelServer(ScriptedBrain([Reply(text=text, chunk_chars=4)])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        batches = asyncio.run(drain_all({7: handle}))[7]
    assert batches[0][0] == "start" and batches[0][1] is None
    initial = batches[0][2]
    assert initial["content"] == [] and initial["stop_reason"] == "stop"
    assert initial["model"] == "test-model" and isinstance(initial["timestamp"], int)
    deltas = [t for t in batches if t[0] == "text_delta"]
    assert len(deltas) == 20_000
    assert "".join(t[2] for t in deltas) == text
    assert all(t[1] == 0 and t[3] is None for t in deltas)
    assert batches[1] == ("text_start", 0, None, None)
    assert batches[-2] == ("text_end", 0, text, None)
    kind, ci, reason, final = batches[-1]
    assert (kind, ci, reason) == ("done", None, "stop")
    assert final == handle.result()
    assert final["content"] == [{"type": "text", "text": text, "text_signature": None}]
    assert handle.drain() == [] and handle.finished


def test_many_streams_share_one_notifier_and_tuples_cover_every_type() -> None:
    replies = [
        Reply(reasoning="think", text="first", tool_calls=[
            ToolCallSpec("get_time", {"city": "Oslo"}, id="call_1")]),
        Reply(text="second", delay=0.01, chunk_chars=2),
        Reply(text="third", chunk_chars=1),
    ]
    with ModelServer(ScriptedBrain(replies)) as server:
        handles = {token: _alchemy.openai_completions_stream(model_for(server.url), CONTEXT,
                                                              options())
                   for token in (1, 2, 3)}
        batches = asyncio.run(drain_all(handles))
    texts = {}
    for token, tuples in batches.items():
        assert tuples[-1][0] == "done"
        texts[token] = "".join(t[2] for t in tuples if t[0] == "text_delta")
        assert [t[0] for t in tuples].count("done") == 1
    assert sorted(texts.values()) == ["first", "second", "third"]
    with_tools = next(t for t in batches.values() if any(x[0] == "tool_call_end" for x in t))
    by_type = {t[0]: t for t in with_tools}
    assert by_type["thinking_start"] == ("thinking_start", 0, "reasoning_content", None)
    assert by_type["thinking_end"] == ("thinking_end", 0, "think", None)
    assert by_type["tool_call_start"] == ("tool_call_start", 2, "call_1", "get_time")
    assert by_type["tool_call_end"] == ("tool_call_end", 2, {
        "type": "tool_call", "id": "call_1", "name": "get_time", "arguments": {"city": "Oslo"}},
        None)
    assert by_type["done"][2] == "tool_calls"


def test_retry_tuple_and_error_tuple() -> None:
    from tinyagent.testing import Fault

    replies = [Reply(fault=Fault.http(503)), Reply(fault=Fault.http(500, "broken"))]
    with ModelServer(ScriptedBrain(replies)) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        tuples = asyncio.run(drain_all({1: handle}))[1]
    assert [t[0] for t in tuples] == ["retry", "error"]
    kind, ci, reason, (attempt, delay) = tuples[0]
    assert (ci, reason, attempt) == (None, "HTTP 503 Service Unavailable", 1)
    assert isinstance(delay, float) and delay > 0
    assert tuples[1][2] == "error"
    assert tuples[1][3]["error_message"] == "HTTP 500 Internal Server Error: broken (after 1 retries)"


def test_attach_with_events_pending_marks_at_once() -> None:
    with ModelServer(ScriptedBrain([Reply(text="early")])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        handle.result()  # everything is queued, nothing drained
        notifier = _alchemy.Notifier()
        handle.attach(notifier, 42)
        assert notifier.take_ready() == [42]
        assert notifier.take_ready() == []
        tuples = handle.drain()
    assert tuples[0][0] == "start" and tuples[-1][0] == "done"


def test_start_error_is_raised_by_drain_and_wakes_the_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    handle = _alchemy.openai_completions_stream(
        model_for("https://api.openai.com/v1/chat/completions", provider="openai"), CONTEXT,
        options())
    notifier = _alchemy.Notifier()
    handle.attach(notifier, 5)
    assert os.read(notifier.fileno(), 8)  # readable at once
    assert notifier.take_ready() == [5]
    with pytest.raises(RuntimeError, match="^failed to start openai-completions stream: "):
        handle.drain()


def test_many_slow_streams_hold_no_executor_slot() -> None:
    """R11: 256 paced streams drained on one loop; the default executor stays free."""
    reply = Reply(text=" ".join(["tok"] * 20), chunking="words", delay=0.05)

    async def main(url: str) -> float:
        handles = {token: _alchemy.openai_completions_stream(model_for(url), CONTEXT, options())
                   for token in range(256)}
        task = asyncio.ensure_future(drain_all(handles))
        await asyncio.sleep(0.3)  # every stream is in flight
        started = time.monotonic()
        await asyncio.to_thread(int)
        probe = time.monotonic() - started
        batches = await task
        assert all(b[-1][0] == "done" for b in batches.values())
        assert all("".join(t[2] for t in b if t[0] == "text_delta") == reply.text
                   for b in batches.values())
        return probe

    with ModelServer(reply) as server:
        probe = asyncio.run(main(server.url))
    assert probe < 3.0
