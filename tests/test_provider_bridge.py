"""The asyncio bridge on the batch interface of docs/design.md, against pure-Python fakes.

``PipeNotifier`` and ``ScriptedBatchHandle`` follow the documented interface exactly (a pipe fd that
is readable while a token is marked, ``take_ready()`` clearing it, ``attach()`` marking at once when
events are pending, ``drain()`` returning every pending 4-tuple), so the bridge's delivery, its
partial (docs/architecture.md#partial) and its cancellation paths are tested without the Rust core.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from typing import Any

import pytest
from support.provider_support import collect, local_stream, run, use_core

from tinyagent import _bridge, _stream_response
from tinyagent.agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    TextContent,
    ThinkingContent,
    ToolCallContent,
    new_zero_usage,
)
from tinyagent.alchemy_provider import AlchemyStreamResponse


class PipeNotifier:
    """docs/design.md ``Notifier``: readable while any token is marked; ``take_ready`` clears it."""

    instances = 0

    def __init__(self) -> None:
        PipeNotifier.instances += 1
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        self._lock = threading.Lock()
        self._marked: list[int] = []
        self._signalled = False

    def fileno(self) -> int:
        return self._read

    def mark(self, token: int) -> None:
        with self._lock:
            if token not in self._marked:
                self._marked.append(token)
            if not self._signalled:
                self._signalled = True
                os.write(self._write, b"!")

    def take_ready(self) -> list[int]:
        with self._lock:
            try:
                os.read(self._read, 4096)
            except BlockingIOError:
                pass
            tokens, self._marked, self._signalled = self._marked, [], False
            return tokens

    def __del__(self) -> None:
        os.close(self._read)
        os.close(self._write)


def final_dict(text: str = "", stop_reason: str = "stop", error: str | None = None) -> dict:
    content = [{"type": "text", "text": text}] if text else []
    return {
        "role": "assistant",
        "content": content,
        "stop_reason": stop_reason,
        "timestamp": 1,
        "api": "openai-completions",
        "provider": "local",
        "model": "m",
        "usage": new_zero_usage(),
        "error_message": error,
    }


ABORTED = final_dict(stop_reason="aborted", error="Request was aborted")


class ScriptedBatchHandle:
    """A stream handle with only the batch interface; the test pushes 4-tuples into it."""

    def __init__(self, *items: tuple, start_error: str | None = None) -> None:
        self._pending: deque[tuple] = deque(items)
        self._notifier: PipeNotifier | None = None
        self._token = 0
        self._lock = threading.Lock()
        self._terminal = any(item[0] in ("done", "error") for item in items)
        self.start_error = start_error
        self.finished = False
        self.cancel_calls = 0
        self.drains = 0

    def push(self, *items: tuple) -> None:
        with self._lock:
            if self._terminal:
                return
            self._pending.extend(items)
            self._terminal = any(item[0] in ("done", "error") for item in items)
            notifier = self._notifier
        if notifier is not None:
            notifier.mark(self._token)

    def attach(self, notifier: PipeNotifier, token: int) -> None:
        with self._lock:
            self._notifier, self._token = notifier, token
            pending = bool(self._pending) or self.start_error is not None
        if pending:
            notifier.mark(token)

    def drain(self) -> list[tuple]:
        self.drains += 1
        if self.start_error is not None:
            raise RuntimeError(self.start_error)
        with self._lock:
            items = list(self._pending)
            self._pending.clear()
        if any(item[0] in ("done", "error") for item in items):
            self.finished = True
        return items

    def cancel(self) -> None:
        self.cancel_calls += 1
        self.push(("error", None, "aborted", ABORTED))


def response_for(handle: ScriptedBatchHandle, **kwargs: Any) -> AlchemyStreamResponse:
    return AlchemyStreamResponse(_handle=handle, _notifier_factory=PipeNotifier, **kwargs)


START = ("start", None, final_dict(), None)


def text_reply(*deltas: str) -> list[tuple]:
    full = "".join(deltas)
    return [
        START,
        ("text_start", 0, None, None),
        *[("text_delta", 0, d, None) for d in deltas],
        ("text_end", 0, full, None),
        ("done", None, "stop", final_dict(full)),
    ]


# --- event mapping ------------------------------------------------------------------------


def test_tuples_map_to_contract_events() -> None:
    call = {"type": "tool_call", "id": "c1", "name": "sum", "arguments": {"a": 1}}
    handle = ScriptedBatchHandle(
        ("retry", None, "HTTP 503 Service Unavailable", (1, 0.5)),
        START,
        ("thinking_start", 0, "reasoning_content", None),
        ("thinking_delta", 0, "hm", None),
        ("thinking_end", 0, "hm", None),
        ("text_start", 1, None, None),
        ("text_delta", 1, "Hi", None),
        ("text_end", 1, "Hi", None),
        ("tool_call_start", 2, "c1", "sum"),
        ("tool_call_delta", 2, '{"a": 1}', None),
        ("tool_call_end", 2, call, None),
        ("done", None, "tool_calls", final_dict("Hi", stop_reason="tool_calls")),
    )
    events = run(collect(response_for(handle)))
    assert [e.type for e in events] == [
        "retry", "start", "thinking_start", "thinking_delta", "thinking_end", "text_start",
        "text_delta", "text_end", "tool_call_start", "tool_call_delta", "tool_call_end", "done",
    ]  # fmt: skip
    retry, done = events[0], events[-1]
    assert (retry.reason, retry.attempt, retry.delay) == ("HTTP 503 Service Unavailable", 1, 0.5)
    assert events[4].content == "hm" and events[7].content == "Hi"
    assert events[3].delta == "hm" and events[3].content_index == 0
    assert events[8].tool_call == ToolCallContent(id="c1", name="sum", arguments={})
    assert events[10].tool_call == ToolCallContent(id="c1", name="sum", arguments={"a": 1})
    assert done.reason == "tool_calls" and done.partial is None
    assert isinstance(done.message, AssistantMessage) and done.message.stop_reason == "tool_calls"
    partial = events[1].partial
    assert all(e.partial is partial for e in events[:-1])  # one partial object per stream
    assert partial.content == [
        ThinkingContent(thinking="hm", thinking_signature="reasoning_content"),
        TextContent(text="Hi"),
        ToolCallContent(id="c1", name="sum", arguments={"a": 1}, partial_json=None),
    ]


def test_error_event_carries_the_final_message_and_result_returns_it() -> None:
    handle = ScriptedBatchHandle(
        START, ("error", None, "error", final_dict(stop_reason="error", error="HTTP 500: boom"))
    )

    async def main() -> tuple[list[AssistantMessageEvent], AssistantMessage]:
        response = response_for(handle)
        return await collect(response), await response.result()

    events, final = run(main())
    assert events[-1].type == "error" and events[-1].reason == "error"
    assert events[-1].error is final and final.error_message == "HTTP 500: boom"


def test_start_failure_is_raised_with_the_secret_scrubbed() -> None:
    handle = ScriptedBatchHandle(start_error="failed to start openai-completions stream: key sk-9")

    async def main() -> None:
        response = response_for(handle, _scrub=lambda t: t.replace("sk-9", "***"))
        with pytest.raises(RuntimeError, match=r"^failed to start .* key \*\*\*$"):
            await response.__anext__()
        with pytest.raises(RuntimeError, match="failed to start"):
            await response.result()
        with pytest.raises(StopAsyncIteration):
            await response.__anext__()

    run(main())


def test_start_failure_stops_watching_the_signal() -> None:
    handle = ScriptedBatchHandle(start_error="failed to start openai-completions stream: boom")

    async def main() -> list[asyncio.Task[Any]]:
        response = response_for(handle, signal=asyncio.Event())
        with pytest.raises(RuntimeError, match="boom"):
            await response.__anext__()
        await asyncio.sleep(0)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(main()) == []  # no signal watcher left pending


def test_final_error_message_is_scrubbed() -> None:
    leaked = final_dict(stop_reason="error", error="HTTP 401: bad key sk-live-1")
    handle = ScriptedBatchHandle(START, ("error", None, "error", leaked))

    async def main() -> AssistantMessage:
        response = response_for(handle, _scrub=lambda t: t.replace("sk-live-1", "***"))
        await collect(response)
        return await response.result()

    assert run(main()).error_message == "HTTP 401: bad key ***"


# --- the partial (docs/architecture.md#partial) -------------------------------------------


def test_partial_holds_every_delta_up_to_the_event_and_no_later_batch() -> None:
    handle = ScriptedBatchHandle()

    async def main() -> None:
        response = response_for(handle)
        handle.push(START, ("text_start", 0, None, None))
        seen = ""
        for batch in (["a", "b", "c"], ["d"], ["e", "f"]):
            through_batch = seen + "".join(batch)
            handle.push(*[("text_delta", 0, d, None) for d in batch])
            for _ in batch:
                event = await response.__anext__()
                while event.type != "text_delta":
                    event = await response.__anext__()
                seen += event.delta
                # At least every delta so far; ahead only by the rest of the same batch.
                assert event.partial.content[0].text == through_batch
            assert seen == through_batch
        handle.push(("text_end", 0, seen, None), ("done", None, "stop", final_dict(seen)))
        assert [e.type for e in await collect(response)] == ["text_end", "done"]

    run(main())


def test_batch_arriving_while_events_are_buffered_waits_for_the_consumer() -> None:
    handle = ScriptedBatchHandle(START, ("text_start", 0, None, None))

    async def main() -> None:
        response = response_for(handle)
        handle.push(("text_delta", 0, "a", None), ("text_delta", 0, "b", None))
        events = [await response.__anext__() for _ in range(3)]
        assert [e.type for e in events] == ["start", "text_start", "text_delta"]
        handle.push(("text_delta", 0, "LATER", None))
        await asyncio.sleep(0.05)  # the notifier fires while "b" is still buffered
        second = await response.__anext__()
        assert second.delta == "b" and second.partial.content[0].text == "ab"
        third = await response.__anext__()
        assert third.delta == "LATER" and third.partial.content[0].text == "abLATER"

    run(main())


def test_fifty_thousand_deltas_through_the_bridge() -> None:
    handle = ScriptedBatchHandle()
    deltas = [f"{i % 10}" * 4 for i in range(50_000)]

    async def produce() -> None:
        handle.push(START, ("text_start", 0, None, None))
        for at in range(0, len(deltas), 500):
            handle.push(*[("text_delta", 0, d, None) for d in deltas[at : at + 500]])
            await asyncio.sleep(0)
        full = "".join(deltas)
        handle.push(("text_end", 0, full, None), ("done", None, "stop", final_dict(full)))

    async def main() -> tuple[int, str]:
        response = response_for(handle)
        producer = asyncio.create_task(produce())
        count = sum([1 async for e in response if e.type == "text_delta"])
        await producer
        return count, (await response.result()).content[0].text

    count, text = run(main())
    assert count == 50_000 and text == "".join(deltas)


# --- delivery: one Notifier per loop, reader only while streams are active ------------------


def test_one_notifier_per_loop_and_reader_removed_when_idle() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        before = PipeNotifier.instances
        handles = [ScriptedBatchHandle() for _ in range(5)]
        responses = [response_for(h) for h in handles]
        for index, handle in enumerate(handles):
            handle.push(*text_reply(f"reply {index}"))
        texts = []
        for response in responses:
            events = await collect(response)
            texts.append(events[-1].message.content[0].text)
        assert texts == [f"reply {i}" for i in range(5)]
        assert PipeNotifier.instances - before == 1
        dispatcher = _bridge._DISPATCHERS[loop][PipeNotifier]
        fd = dispatcher.notifier.fileno()
        assert fd not in loop._selector.get_map()  # type: ignore[attr-defined]

    run(main())


def test_interleaved_streams_on_one_loop_all_progress() -> None:
    handles = [ScriptedBatchHandle() for _ in range(50)]

    async def produce() -> None:
        for handle in handles:
            handle.push(START, ("text_start", 0, None, None))
        for step in range(20):
            for handle in handles:
                handle.push(("text_delta", 0, f"{step},", None))
            await asyncio.sleep(0.001)
        full = "".join(f"{step}," for step in range(20))
        for handle in handles:
            handle.push(("text_end", 0, full, None), ("done", None, "stop", final_dict(full)))

    async def consume(handle: ScriptedBatchHandle) -> str:
        response = response_for(handle)
        deltas = [e.delta async for e in response if e.type == "text_delta"]
        return "".join(deltas)

    async def main() -> list[str]:
        producer = asyncio.create_task(produce())
        texts = await asyncio.gather(*(consume(h) for h in handles))
        await producer
        return texts

    assert set(run(main())) == {"".join(f"{step}," for step in range(20))}


def test_delivery_from_another_thread_wakes_the_loop() -> None:
    handle = ScriptedBatchHandle()

    def produce() -> None:
        for item in text_reply("from", " a", " thread"):
            time.sleep(0.002)
            handle.push(item)

    async def main() -> str:
        response = response_for(handle)
        thread = threading.Thread(target=produce)
        thread.start()
        events = await collect(response)
        thread.join()
        return "".join(e.delta for e in events if e.type == "text_delta")

    assert run(main()) == "from a thread"


# --- stopping ---------------------------------------------------------------------------


def test_signal_reaches_cancel_while_waiting() -> None:
    handle = ScriptedBatchHandle(START, ("text_start", 0, None, None))

    async def main() -> list[AssistantMessageEvent]:
        signal = asyncio.Event()
        response = response_for(handle, signal=signal)
        asyncio.get_running_loop().call_later(0.05, signal.set)
        return await collect(response)

    events = run(main())
    assert handle.cancel_calls == 1
    assert events[-1].type == "error" and events[-1].reason == "aborted"
    assert events[-1].error.error_message == "Request was aborted"


def test_signal_already_set_cancels_at_once() -> None:
    handle = ScriptedBatchHandle(START)

    async def main() -> AssistantMessage:
        signal = asyncio.Event()
        signal.set()
        response = response_for(handle, signal=signal)
        return await response.result()

    assert run(main()).stop_reason == "aborted"
    assert handle.cancel_calls == 1


def test_cancelling_the_awaiting_task_cancels_the_stream() -> None:
    handle = ScriptedBatchHandle(START)

    async def main() -> AssistantMessage:
        response = response_for(handle)
        task = asyncio.create_task(collect(response))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await response.result()

    assert run(main()).stop_reason == "aborted"
    assert handle.cancel_calls == 1


def test_aclose_cancels_and_ends_the_iteration() -> None:
    handle = ScriptedBatchHandle(START, ("text_start", 0, None, None))

    async def main() -> None:
        response = response_for(handle)
        assert (await response.__anext__()).type == "start"
        await response.aclose()
        assert handle.cancel_calls == 1
        with pytest.raises(StopAsyncIteration):
            await response.__anext__()
        assert (await response.result()).stop_reason == "aborted"
        await response.aclose()
        assert handle.cancel_calls == 1

    run(main())


def test_closed_stream_still_drains_to_its_end_and_detaches() -> None:
    handle = ScriptedBatchHandle(START)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        response = response_for(handle)
        await response.__anext__()
        await response.aclose()
        deadline = loop.time() + 1
        while not handle.finished and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert handle.finished
        fd = _bridge._DISPATCHERS[loop][PipeNotifier].notifier.fileno()
        assert fd not in loop._selector.get_map()  # type: ignore[attr-defined]

    run(main())


def test_streams_on_two_loops_in_turn() -> None:
    for text in ("first loop", "second loop"):
        handle = ScriptedBatchHandle(*text_reply(text))
        events = run(collect(response_for(handle)))
        assert events[-1].message.content[0].text == text


def test_module_stand_in_with_a_notifier_uses_the_batch_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handle = ScriptedBatchHandle(*text_reply("via ", "the seam"))

    use_core(monkeypatch, lambda model, context, options: handle, notifier=PipeNotifier)

    async def main() -> list[AssistantMessageEvent]:
        return await collect(await local_stream())

    events = run(main())
    assert handle.drains >= 1  # ScriptedBatchHandle has no next_event: only drain() can work
    assert "".join(e.delta for e in events if e.type == "text_delta") == "via the seam"


def test_reader_support_is_detected_from_the_loop_class() -> None:
    class NoReaders(asyncio.BaseEventLoop):  # like Windows' Proactor loop: abstract add_reader
        pass

    selector_loop = asyncio.SelectorEventLoop()
    try:
        assert _bridge.loop_supports_readers(selector_loop)
    finally:
        selector_loop.close()
    assert not _bridge.loop_supports_readers(NoReaders())


def test_loop_without_readers_drives_the_handle_from_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class BothInterfaces:
        def __init__(self) -> None:
            self.events = deque([{"type": "start"}, {"type": "done", "reason": "stop"}])

        def attach(self, notifier: Any, token: int) -> None:
            raise AssertionError("attach() on a loop without add_reader")

        def drain(self) -> list:
            raise AssertionError("drain() on a loop without add_reader")

        def next_event(self) -> Any:
            return self.events.popleft() if self.events else None

    monkeypatch.setattr(_stream_response, "loop_supports_readers", lambda loop: False)
    response = response_for(BothInterfaces())  # type: ignore[arg-type]
    assert [e.type for e in run(collect(response))] == ["start", "done"]
