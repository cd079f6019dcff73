"""The loop used directly, without an Agent: agent_loop, agent_loop_continue, run_loop and
stream_assistant_response (docs/events.md#run-structure,
docs/events.md#llm-call)."""

from __future__ import annotations

import asyncio

import pytest
from support.agent_support import (
    CLOSING_TURN,
    ScriptedReply,
    ScriptedStreamFn,
    label,
    run,
    scripted_model,
    squeeze,
    sum_calls,
    sum_tool,
)

from tinyagent import (
    AgentContext,
    AgentLoopConfig,
    AssistantMessage,
    TextContent,
    ToolResultMessage,
    UserMessage,
    agent_loop,
    agent_loop_continue,
    default_convert_to_llm,
    stream_assistant_response,
)
from tinyagent.agent_loop import create_agent_stream, run_loop


def config(**overrides):
    return AgentLoopConfig(
        model=scripted_model(), convert_to_llm=default_convert_to_llm, **overrides
    )


def user(text):
    return UserMessage(content=[TextContent(text=text)], timestamp=1)


def test_agent_loop_returns_a_stream_whose_result_is_the_new_messages():
    fn = ScriptedStreamFn(["hello"])

    async def main():
        history = [
            user("old"),
            AssistantMessage(content=[TextContent(text="old reply")], stop_reason="stop"),
        ]
        context = AgentContext(system_prompt="sys", messages=history, tools=None)
        stream = agent_loop([user("new")], context, config(), stream_fn=fn)
        events = [e async for e in stream]
        return events, await stream.result(), history

    events, result, history = run(main())
    assert squeeze([label(e) for e in events]) == [
        "agent_start", "turn_start", "message_start", "message_end", "message_start", "upd[text_start]",
        "upd[text_delta]+", "upd[text_end]", "message_end", "turn_end", "agent_end",
    ]  # fmt: skip
    assert [m.role for m in result] == ["user", "assistant"]
    assert len(history) == 2  # the caller's list is not touched
    assert [m.role for m in fn.calls[0].context.messages] == ["user", "assistant", "user"]


def test_agent_loop_continue_checks_the_history_synchronously():
    with pytest.raises(ValueError, match="^Cannot continue: no messages in context$"):
        agent_loop_continue(AgentContext(), config())
    context = AgentContext(messages=[AssistantMessage(content=[], stop_reason="stop")])
    with pytest.raises(ValueError, match="^Cannot continue from message role: assistant$"):
        agent_loop_continue(context, config())


def test_agent_loop_continue_from_tool_result():
    fn = ScriptedStreamFn(["continued"])

    async def main():
        context = AgentContext(
            messages=[user("q"), ToolResultMessage(tool_call_id="1", tool_name="t")]
        )
        stream = agent_loop_continue(context, config(), stream_fn=fn)
        return [e.type async for e in stream]

    types = run(main())
    assert types[:3] == ["agent_start", "turn_start", "message_start"]


def test_the_given_signal_aborts_the_run():
    fn = ScriptedStreamFn([ScriptedReply(text="Hello world", hang=True)])

    async def main():
        signal = asyncio.Event()
        stream = agent_loop([user("x")], AgentContext(), config(), signal, fn)
        events = []
        async for event in stream:
            events.append(event)
            if event.type == "message_update":
                signal.set()
        return events

    events = run(main())
    assert events[-1].type == "agent_end"
    assert events[-1].messages[-1].stop_reason == "aborted"


def test_cancelling_the_loop_task_aborts_the_run():
    fn = ScriptedStreamFn([ScriptedReply(text="Hello world", hang=True)])

    async def main():
        before = asyncio.all_tasks()
        stream = agent_loop([user("x")], AgentContext(), config(), None, fn)
        (task,) = asyncio.all_tasks() - before
        events = []
        async for event in stream:
            events.append(event)
            if event.type == "message_update":
                task.cancel()
        await asyncio.wait({task})
        return events, task

    events, task = run(main())
    assert events[-1].type == "agent_end"
    assert events[-1].messages[-1].stop_reason == "aborted"
    assert [e.type for e in events].count("agent_end") == 1


def test_stream_assistant_response_does_not_call_the_model_when_already_aborted():
    fn = ScriptedStreamFn(["never"])

    async def main():
        signal = asyncio.Event()
        signal.set()
        stream = create_agent_stream()
        pushed = []
        stream.push = pushed.append  # the loop emits only through push
        context = AgentContext(messages=[user("x")])
        message = await stream_assistant_response(context, config(), signal, stream, fn)
        return message, pushed, context

    message, pushed, context = run(main())
    assert fn.calls == []
    assert [e.type for e in pushed] == ["message_start", "message_end"]
    assert message.stop_reason == "aborted" and context.messages[-1] is message


def test_stream_assistant_response_keeps_the_context_in_step_with_the_partial():
    fn = ScriptedStreamFn(["abc def"])

    async def main():
        stream = create_agent_stream()
        seen = []
        context = AgentContext(messages=[user("x")])

        def push(event):
            if event.type == "message_update":
                seen.append(context.messages[-1] is event.message)

        stream.push = push
        final = await stream_assistant_response(context, config(), None, stream, fn)
        return final, seen, context

    final, seen, context = run(main())
    assert seen and all(seen)
    assert context.messages[-1] is final


def test_run_loop_runs_tools_and_ends_the_stream():
    fn = ScriptedStreamFn([sum_calls((2, 3)), "5"])

    async def main():
        stream = create_agent_stream()
        context = AgentContext(messages=[user("add")], tools=[sum_tool()])
        new_messages = [context.messages[0]]
        await run_loop(context, new_messages, config(), None, stream, fn)
        return await stream.result(), new_messages

    result, new_messages = run(main())
    assert result is new_messages
    assert [m.role for m in result] == ["user", "assistant", "tool_result", "assistant"]
    assert result[2].content[0].text == "5"


def test_steering_and_follow_up_providers_of_the_config():
    fn = ScriptedStreamFn(["one", "two"])
    steering = [[user("steer")]]
    follow_ups = [[user("follow")]]

    async def get_steering():
        return steering.pop() if steering else []

    async def get_follow_ups():
        return follow_ups.pop() if follow_ups else []

    async def main():
        stream = agent_loop(
            [user("x")],
            AgentContext(),
            config(get_steering_messages=get_steering, get_follow_up_messages=get_follow_ups),
            stream_fn=fn,
        )
        return await stream.result()

    result = run(main())
    texts = [m.content[0].text for m in result]
    assert texts == ["x", "steer", "one", "follow", "two"]


def test_poll_failure_ends_the_run_with_an_error_message():
    fn = ScriptedStreamFn(["one"])

    async def get_follow_ups():
        raise OSError("queue store offline")

    async def main():
        stream = agent_loop(
            [user("x")], AgentContext(), config(get_follow_up_messages=get_follow_ups), stream_fn=fn
        )
        return [e async for e in stream]

    events = run(main())
    final = events[-1].messages[-1]
    assert final.stop_reason == "error"
    assert final.error_message == "get_follow_up_messages failed: OSError: queue store offline"
    assert [e.type for e in events][-5:] == CLOSING_TURN


def test_unexpected_internal_failure_still_ends_the_run():
    fn = ScriptedStreamFn(["fine"])

    async def main():
        stream = create_agent_stream()
        events = []
        failed = []

        def push(event):
            if event.type == "turn_end" and not failed:
                failed.append(event)
                raise RuntimeError("push failed")
            events.append(event)

        stream.push = push
        context = AgentContext(messages=[user("x")])
        await run_loop(context, [context.messages[0]], config(), None, stream, fn)
        return events

    events = run(main())
    closing = events[-1].messages[-1]
    assert closing.stop_reason == "error" and closing.error_message == "RuntimeError: push failed"
    assert [e.type for e in events][-5:] == CLOSING_TURN
