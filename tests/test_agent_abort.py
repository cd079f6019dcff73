"""Abort, cancellation, threads and loops.

See docs/events.md#abort, docs/architecture.md#event-loops and docs/architecture.md#differences
(#1, #9, #25).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from support.agent_support import (
    CLOSING_TURN,
    ScriptedReply,
    ScriptedStreamFn,
    run,
    scripted_agent,
    sum_calls,
    sum_tool,
)
from support.run_sync import run_sync

from tinyagent import (
    AgentToolResult,
    AssistantMessage,
    AssistantMessageEvent,
    TextContent,
    UserMessage,
)
from tinyagent.agent_types import now_ms


class IgnoringResponse:
    """A provider response that ignores the abort signal and never yields after its first event."""

    def __init__(self) -> None:
        self.partial = AssistantMessage(
            content=[TextContent(text="partial text")], stop_reason="stop"
        )
        self.sent = False
        self.closed = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.sent:
            self.sent = True
            return AssistantMessageEvent(
                type="text_delta", content_index=0, delta="partial text", partial=self.partial
            )
        await asyncio.Event().wait()  # forever, whatever the signal says
        raise AssertionError("unreachable")

    async def result(self):
        raise AssertionError("not reached on abort")

    async def aclose(self):
        self.closed = True


def test_abort_stops_a_provider_that_ignores_the_signal_and_closes_it():
    response = IgnoringResponse()

    async def stream_fn(model, context, options):
        return response

    agent, _, rec = scripted_agent([])
    agent.stream_fn = stream_fn

    def abort_on_first_update(event):
        if event.type == "message_update":
            asyncio.get_running_loop().call_later(0.02, agent.abort)

    agent.subscribe(abort_on_first_update)
    reply = run(agent.prompt("x"))
    assert reply.stop_reason == "aborted" and reply.error_message == "Request was aborted"
    assert reply.content[0].text == "partial text"
    assert response.closed  # aclose() was called: the HTTP stream is closed (R1)
    assert rec.labels[-3:] == ["message_end", "turn_end", "agent_end"]
    assert agent.state.error == "Request was aborted"
    assert not agent.state.is_streaming


def test_abort_when_idle_is_a_no_op():
    agent, _, _ = scripted_agent(["a"])
    agent.abort()
    assert run(agent.prompt("x")).stop_reason == "stop"


def test_abort_after_the_answer_is_complete_is_a_no_op():
    agent, _, rec = scripted_agent(["final answer"])

    def abort_at_end(event):
        if event.type == "message_end" and isinstance(event.message, AssistantMessage):
            agent.abort()

    agent.subscribe(abort_at_end)
    reply = run(agent.prompt("x"))
    assert reply.stop_reason == "stop"
    assert agent.state.error is None
    assert [m.role for m in agent.state.messages] == ["user", "assistant"]
    assert rec.labels.count("agent_end") == 1


def test_cancelling_the_prompt_task_aborts_completes_and_reraises():
    agent, _, rec = scripted_agent([ScriptedReply(text="long reply", hang=True)])

    async def main():
        task = asyncio.ensure_future(agent.prompt("x"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return agent.state

    state = run(main())
    assert rec.events[-1].type == "agent_end"
    assert [e.type for e in rec.events].count("agent_end") == 1
    assert state.messages[-1].stop_reason == "aborted"
    assert not state.is_streaming
    # The agent is usable again at once.
    agent.stream_fn = ScriptedStreamFn(["again"])
    assert run(agent.prompt("y")).stop_reason == "stop"


def test_closing_stream_early_aborts_and_cleans_up():
    agent, stream_fn, rec = scripted_agent([ScriptedReply(text="a long long reply", delay=0.01)])

    async def main():
        events = agent.stream("x")
        async for event in events:
            if event.type == "message_update":
                break
        await events.aclose()
        return agent.state.is_streaming

    assert run(main()) is False
    assert rec.events[-1].type == "agent_end"
    assert agent.state.messages[-1].stop_reason == "aborted"
    assert stream_fn.responses[0].closed


def test_break_out_of_stream_then_wait_for_idle():
    agent, _, rec = scripted_agent([ScriptedReply(text="a long long reply", delay=0.01)])

    async def main():
        async for event in agent.stream("x"):
            if event.type == "message_update":
                break
        await asyncio.sleep(0)  # the generator is finalized via the loop's asyncgen hooks
        await agent.wait_for_idle()

    run(main())
    assert rec.events[-1].type == "agent_end"
    assert not agent.state.is_streaming


def test_abort_from_another_thread():
    agent, _, _ = scripted_agent([ScriptedReply(text="waiting", hang=True)])
    timer = threading.Timer(0.1, agent.abort)
    timer.start()
    try:
        reply = run(agent.prompt("x"))
    finally:
        timer.cancel()
    assert reply.stop_reason == "aborted"


def test_steer_from_another_thread_reaches_the_run():
    gate = threading.Event()
    agent_box = []

    async def slow_tool(tool_call_id, args, signal, on_update):
        threading.Thread(
            target=lambda: (
                agent_box[0].steer(UserMessage(content=[TextContent(text="from thread")])),
                gate.set(),
            )
        ).start()
        await asyncio.to_thread(gate.wait, 2)
        await asyncio.sleep(0.01)  # let the call_soon_threadsafe callback run
        return AgentToolResult(content=[TextContent(text="ok")])

    script = [sum_calls((1, 2)), "seen"]
    agent, stream_fn, _ = scripted_agent(script, tools=[sum_tool(slow_tool)])
    agent_box.append(agent)
    run(agent.prompt("x"))
    assert stream_fn.calls[1].context.messages[-1].content[0].text == "from thread"


def test_already_processing_from_another_thread_and_loop():
    agent, _, _ = scripted_agent([ScriptedReply(text="hold", hang=True)])
    started = threading.Event()
    agent.subscribe(lambda e: started.set() if e.type == "agent_start" else None)
    worker = threading.Thread(target=lambda: asyncio.run(agent.prompt("on worker")))
    worker.start()
    assert started.wait(2)
    with pytest.raises(RuntimeError, match="already processing a prompt"):
        run(agent.prompt("on main"))
    agent.abort()
    worker.join(3)
    assert not worker.is_alive()
    assert agent.state.messages[-1].stop_reason == "aborted"


def test_one_agent_serves_different_loops_in_turn():
    agent, _, _ = scripted_agent(["first", "second", "third"])
    assert run(agent.prompt_text("a")) == "first"
    assert run(agent.prompt_text("b")) == "second"
    result = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(agent.prompt_text("c"))))
    thread.start()
    thread.join(3)
    assert result == ["third"]


def test_reset_during_a_run_detaches_it():
    agent, _, rec = scripted_agent([ScriptedReply(text="streaming", hang=True)])

    def reset_on_update(event):
        if event.type == "message_update" and event.assistant_message_event.type == "text_delta":
            agent.reset()

    agent.subscribe(reset_on_update)

    async def main():
        reply = await agent.prompt("x")
        await agent.wait_for_idle()
        return reply

    reply = run(main())
    assert reply.stop_reason == "aborted"  # the dying run still completes
    assert agent.state.messages == []  # but never writes into the cleared state
    assert rec.events[-1].type == "agent_end"
    assert not agent.state.is_streaming


def test_clear_messages_during_a_run_detaches_it():
    agent, _, _ = scripted_agent([ScriptedReply(text="streaming", hang=True)])
    agent.subscribe(lambda e: agent.clear_messages() if e.type == "message_update" else None)
    run(agent.prompt("x"))
    assert agent.state.messages == []


def abort_soon_after_tools_start(agent):
    def listener(event):
        if event.type == "tool_execution_start":
            asyncio.get_running_loop().call_later(0.05, agent.abort)

    return listener


def test_tools_see_the_signal_and_unfinished_calls_are_aborted():
    seen_signal = []

    async def watcher_tool(tool_call_id, args, signal, on_update):
        seen_signal.append(signal)
        await signal.wait()
        await asyncio.sleep(10)
        return AgentToolResult(content=[TextContent(text="never")])

    agent, stream_fn, _ = scripted_agent(
        [sum_calls((1, 2))],
        tools=[sum_tool(watcher_tool)],
    )
    agent.subscribe(abort_soon_after_tools_start(agent))
    reply = run(agent.prompt("x"))
    assert seen_signal and seen_signal[0].is_set()
    assert reply.stop_reason == "aborted"
    tool_result = agent.state.messages[2]
    assert tool_result.is_error and tool_result.content[0].text == "Tool execution aborted"
    assert len(stream_fn.calls) == 1


def test_tool_that_suppresses_cancellation_is_detached_after_a_second(caplog):
    finished = threading.Event()

    async def stubborn(tool_call_id, args, signal, on_update):
        deadline = time.monotonic() + 1.6
        while time.monotonic() < deadline:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue  # refuses to stop
        finished.set()
        return AgentToolResult(content=[TextContent(text="late")])

    agent, _, rec = scripted_agent(
        [sum_calls((1, 2))],
        tools=[sum_tool(stubborn)],
    )
    agent.subscribe(abort_soon_after_tools_start(agent))

    async def main():
        started = time.monotonic()
        reply = await agent.prompt("x")
        assert not finished.is_set()  # the run did not wait for the stubborn tool
        return reply, time.monotonic() - started

    with caplog.at_level(logging.WARNING, logger="tinyagent"):
        reply, elapsed = run(main())
    assert reply.stop_reason == "aborted"
    assert elapsed < 1.5  # liveness: detached, not waited for until it gave up
    assert "detaching" in caplog.text
    assert rec.events[-1].type == "agent_end"


def test_run_sync_without_and_inside_a_running_loop():
    agent, _, _ = scripted_agent(["one", "two"])
    assert run_sync(agent.prompt_text("a")) == "one"

    async def inside_a_loop():
        return run_sync(agent.prompt_text("b"))

    assert asyncio.run(inside_a_loop()) == "two"


def test_aborted_message_timestamp_is_epoch_ms():
    agent, _, _ = scripted_agent([ScriptedReply(text="x", hang=True)])
    agent.subscribe(lambda e: agent.abort() if e.type == "message_update" else None)
    reply = run(agent.prompt("x"))
    assert abs(reply.timestamp - now_ms()) < 5000


def test_listener_failure_during_tools_closes_them_and_reports_the_listener():
    async def slow(tool_call_id, args, signal, on_update):
        await asyncio.sleep(10)
        return AgentToolResult(content=[TextContent(text="never")])

    agent, stream_fn, rec = scripted_agent(
        [sum_calls((1, 2))],
        tools=[sum_tool(slow)],
    )

    def f(event):
        if event.type == "tool_execution_start":
            raise ValueError("bad tool view")

    agent.subscribe(f)
    reply = run(agent.prompt("x"))
    assert reply.stop_reason == "error"
    assert reply.error_message == "listener f failed: ValueError: bad tool view"
    assert rec.labels.count("tool_execution_start") == rec.labels.count("tool_execution_end") == 1
    assert agent.state.messages[2].content[0].text == "Tool execution aborted"
    assert rec.labels[-5:] == CLOSING_TURN
    assert len(stream_fn.calls) == 1 and agent.state.error == reply.error_message


def test_abort_stops_hooks_that_never_return():
    async def hanging_before(tool_call, tool, args):
        await asyncio.Event().wait()

    async def hanging_should_stop(message, tool_results, context, new_messages):
        await asyncio.Event().wait()

    tools_agent, _, _ = scripted_agent(
        [sum_calls((1, 2))],
        tools=[sum_tool()],
        before_tool_call=hanging_before,
    )
    tools_agent.subscribe(abort_soon_after_tools_start(tools_agent))
    assert run(tools_agent.prompt("x")).stop_reason == "aborted"

    stop_agent, stream_fn, rec = scripted_agent(
        ["answer"], should_stop_after_turn=hanging_should_stop
    )

    def abort_at_turn_end(event):
        if event.type == "turn_end":
            asyncio.get_running_loop().call_later(0.05, stop_agent.abort)

    stop_agent.subscribe(abort_at_turn_end)
    reply = run(stop_agent.prompt("x"))
    assert reply.stop_reason == "aborted" and len(stream_fn.calls) == 1
    assert rec.labels[-5:] == CLOSING_TURN
