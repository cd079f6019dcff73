"""The exact event orders of docs/events.md#orders, one test per scenario there (in its order),
through an Agent driven by the scripted stream function."""

from __future__ import annotations

import asyncio

from support.agent_support import (
    CLOSING_TURN,
    Recorder,
    ScriptedReply,
    ScriptedStreamFn,
    ScriptedToolCall,
    run,
    scripted_agent,
    sum_calls,
    sum_tool,
)

from tinyagent import AgentToolResult, AssistantMessage, TextContent, ToolResultMessage, UserMessage

PROMPT = ["agent_start", "turn_start", "message_start", "message_end"]
TEXT_REPLY = [
    "message_start",
    "upd[text_start]",
    "upd[text_delta]+",
    "upd[text_end]",
    "message_end",
]
#: Two tool calls run together, the first finishing first: each result message follows its end.
TWO_TOOLS = [
    "tool_execution_start",
    "tool_execution_start",
    "tool_execution_end",
    "message_start",
    "message_end",
    "tool_execution_end",
    "message_start",
    "message_end",
]


def test_plain_reply():
    agent, _, rec = scripted_agent(["Hello there, friend."])
    reply = run(agent.prompt("hi"))
    assert rec.labels == [*PROMPT, *TEXT_REPLY, "turn_end", "agent_end"]
    assert reply.stop_reason == "stop"
    end = rec.events[-1]
    assert [m.role for m in end.messages] == ["user", "assistant"]
    assert rec.of_type("turn_end")[0].tool_results == []


def test_two_tool_calls_then_text():
    script = [
        sum_calls((1, 2), (3, 4)),
        "The sums are 3 and 7.",
    ]
    agent, _, rec = scripted_agent(script, tools=[sum_tool()])
    run(agent.prompt("add"))
    assert rec.labels == [
        *PROMPT,
        "message_start",
        "upd[tool_call_start]",
        "upd[tool_call_delta]+",
        "upd[tool_call_start]",
        "upd[tool_call_delta]+",
        "upd[tool_call_end]",
        "upd[tool_call_end]",
        "message_end",
        *TWO_TOOLS,
        "turn_end",
        "turn_start",
        *TEXT_REPLY,
        "turn_end",
        "agent_end",
    ]
    first_turn_end = rec.of_type("turn_end")[0]
    assert [extract(r) for r in first_turn_end.tool_results] == ["3", "7"]
    assert [m.role for m in rec.events[-1].messages] == [
        "user",
        "assistant",
        "tool_result",
        "tool_result",
        "assistant",
    ]


def extract(message):
    return "".join(b.text for b in message.content if isinstance(b, TextContent))


def test_provider_error_mid_stream_keeps_partial():
    agent, _, rec = scripted_agent([ScriptedReply(text="Hel", error="upstream exploded")])
    reply = run(agent.prompt("hi"))
    assert rec.labels == [*PROMPT, *TEXT_REPLY, "turn_end", "agent_end"]
    assert reply.stop_reason == "error"
    assert reply.error_message == "upstream exploded"
    assert extract(reply) == "Hel"
    assert agent.state.error == "upstream exploded"


def test_provider_raises_mid_stream():
    agent, _, rec = scripted_agent(
        [ScriptedReply(text="Hel", raise_error=ConnectionError("reset by peer"))]
    )
    reply = run(agent.prompt("hi"))
    assert rec.labels == [*PROMPT, *TEXT_REPLY, "turn_end", "agent_end"]
    assert reply.stop_reason == "error" and reply.error_message == "reset by peer"
    assert extract(reply) == "Hel"
    assert reply.usage["cost"]["total"] == 0.0


def test_failure_before_any_provider_event():
    async def failing_stream_fn(model, context, options):
        raise RuntimeError("failed to start openai-completions stream: boom")

    agent, _, rec = scripted_agent(ScriptedStreamFn([]))
    agent.stream_fn = failing_stream_fn
    reply = run(agent.prompt("hi"))
    assert rec.labels == [*PROMPT, "message_start", "message_end", "turn_end", "agent_end"]
    assert reply.stop_reason == "error"
    assert "boom" in reply.error_message
    assert agent.state.error == reply.error_message


def test_abort_while_streaming():
    agent, _, rec = scripted_agent([ScriptedReply(text="Hello world", hang=True)])

    def abort_after_text(event):
        if event.type == "message_update" and event.assistant_message_event.type == "text_end":
            agent.abort()

    agent.subscribe(abort_after_text)
    reply = run(agent.prompt("hi"))
    labels = rec.labels
    assert labels[-3:] == ["message_end", "turn_end", "agent_end"]
    assert labels[: len(PROMPT) + 1] == [*PROMPT, "message_start"]
    assert reply.stop_reason == "aborted"
    assert reply.error_message == "Request was aborted"
    assert extract(reply) == "Hello world"
    assert agent.state.error == "Request was aborted"


def test_abort_while_tools_run():
    async def fast(tool_call_id, args, signal, on_update):
        return AgentToolResult(content=[TextContent(text="fast done")])

    async def slow(tool_call_id, args, signal, on_update):
        await asyncio.sleep(30)
        return AgentToolResult(content=[TextContent(text="never")])

    tools = [sum_tool(fast, name="a"), sum_tool(slow, name="b")]
    script = [
        ScriptedReply(
            tool_calls=[
                ScriptedToolCall("a", {"a": 1, "b": 1}),
                ScriptedToolCall("b", {"a": 1, "b": 1}),
            ]
        )
    ]
    agent, stream_fn, rec = scripted_agent(script, tools=tools)

    def abort_when_a_finished(event):
        if event.type == "tool_execution_start" and event.tool_name == "b":
            asyncio.get_running_loop().call_later(0.05, agent.abort)

    agent.subscribe(abort_when_a_finished)
    reply = run(agent.prompt("go"))
    tail = rec.labels[rec.labels.index("tool_execution_start") :]
    assert tail == [
        *TWO_TOOLS,
        "turn_end",
        *CLOSING_TURN,
    ]
    ends = rec.of_type("tool_execution_end")
    assert (ends[0].is_error, extract_result(ends[0])) == (False, "fast done")
    assert (ends[1].is_error, extract_result(ends[1])) == (True, "Tool execution aborted")
    assert reply.stop_reason == "aborted"
    assert len(stream_fn.calls) == 1  # no request after the abort
    assert [m.role for m in rec.events[-1].messages] == [
        "user",
        "assistant",
        "tool_result",
        "tool_result",
        "assistant",
    ]


def extract_result(end_event):
    return "".join(b.text for b in end_event.result.content)


def test_turn_limit_reached():
    script = [
        sum_calls((1, 1)),
        sum_calls((2, 2)),
        "never requested",
    ]
    agent, stream_fn, rec = scripted_agent(script, tools=[sum_tool()], max_turns=2)
    reply = run(agent.prompt("loop"))
    assert len(stream_fn.calls) == 2
    assert rec.labels[-6:] == ["turn_end", *CLOSING_TURN]
    assert reply.stop_reason == "error"
    assert reply.error_message == "turn limit reached (max_turns=2)"
    assert (reply.api, reply.provider, reply.model) == ("scripted", "test", "scripted-model")
    assert agent.state.error == "turn limit reached (max_turns=2)"


def test_reply_cut_off_inside_tool_arguments():
    calls = []

    async def must_not_run(tool_call_id, args, signal, on_update):
        calls.append(args)
        return AgentToolResult(content=[TextContent(text="ran")])

    script = [
        ScriptedReply(tool_calls=[ScriptedToolCall("sum", '{"a": 1, "b"')], stop_reason="length")
    ]
    agent, _, rec = scripted_agent(script, tools=[sum_tool(must_not_run)])
    reply = run(agent.prompt("add"))
    assert rec.labels == [
        *PROMPT,
        "message_start",
        "upd[tool_call_start]",
        "upd[tool_call_delta]+",
        "upd[tool_call_end]",
        "message_end",
        "turn_end",
        "agent_end",
    ]
    assert calls == []
    assert reply.stop_reason == "error"
    assert reply.error_message == (
        "reply cut off at the output cap (finish_reason=length) inside the arguments of tool 'sum'; "
        "the tool was not run. Raise max_tokens."
    )


def test_listener_raises_while_streaming():
    agent, _, rec = scripted_agent([ScriptedReply(text="Hello world, how are you", hang=True)])
    seen_by_later_listener = Recorder()

    def f(event):
        if event.type == "message_update" and event.assistant_message_event.type == "text_delta":
            raise ValueError("render failed")

    agent.subscribe(f)
    agent.subscribe(seen_by_later_listener)
    reply = run(agent.prompt("hi"))
    assert rec.labels == [
        *PROMPT,
        "message_start",
        "upd[text_start]",
        "upd[text_delta]+",
        "message_end",
        "turn_end",
        "agent_end",
    ]
    assert len(rec.of_type("message_update")) == 2  # the reading stopped at the failing update
    assert reply.stop_reason == "error"
    assert reply.error_message == "listener f failed: ValueError: render failed"
    assert extract(reply) == "Hell"  # the partial is kept
    assert agent.state.error == reply.error_message
    assert seen_by_later_listener.labels == rec.labels  # the others still got the failing event
    assert not agent.state.is_streaming


def test_retry_before_output():
    agent, _, rec = scripted_agent(
        [ScriptedReply(text="ok then", retries=[("HTTP 429 Too Many Requests", 1.0)])]
    )
    run(agent.prompt("hi"))
    assert rec.labels == [
        *PROMPT,
        "message_start",
        "upd[retry]",
        *TEXT_REPLY[1:],
        "turn_end",
        "agent_end",
    ]
    retry = rec.events[len(PROMPT) + 1].assistant_message_event
    assert (retry.attempt, retry.delay, retry.reason) == (1, 1.0, "HTTP 429 Too Many Requests")


def test_steering_queued_before_prompt_joins_turn_one():
    agent, stream_fn, rec = scripted_agent(["answer"])
    agent.steer(UserMessage(content=[TextContent(text="also this")]))
    run(agent.prompt("hi"))
    assert rec.labels == [
        *PROMPT,
        "message_start",
        "message_end",
        *TEXT_REPLY,
        "turn_end",
        "agent_end",
    ]
    sent = stream_fn.calls[0].context.messages
    assert [extract(m) for m in sent] == ["hi", "also this"]


def test_steering_queued_during_a_tool_opens_the_next_turn():
    agent_box = []

    async def steer_while_running(tool_call_id, args, signal, on_update):
        agent_box[0].steer(UserMessage(content=[TextContent(text="change of plan")]))
        return AgentToolResult(content=[TextContent(text="done")])

    script = [sum_calls((1, 2)), "ok, new plan"]
    agent, stream_fn, rec = scripted_agent(script, tools=[sum_tool(steer_while_running)])
    agent_box.append(agent)
    run(agent.prompt("go"))
    labels = rec.labels
    after = labels[labels.index("turn_end") :]
    assert after == [
        "turn_end",
        "turn_start",
        "message_start",
        "message_end",
        *TEXT_REPLY,
        "turn_end",
        "agent_end",
    ]
    assert extract(stream_fn.calls[1].context.messages[-1]) == "change of plan"


def test_follow_ups_one_at_a_time_take_three_turns():
    agent, stream_fn, rec = scripted_agent(["one", "two", "three"])
    agent.follow_up(UserMessage(content=[TextContent(text="f1")]))
    agent.follow_up(UserMessage(content=[TextContent(text="f2")]))
    run(agent.prompt("start"))
    assert len(stream_fn.calls) == 3
    assert rec.labels.count("turn_start") == 3
    # Each later turn opens with exactly one follow-up message pair.
    second_turn = rec.labels[rec.labels.index("turn_end") + 1 :]
    assert second_turn[:3] == ["turn_start", "message_start", "message_end"]
    assert (
        second_turn[3] == "message_start" and rec.events[-1].messages[-1].content[0].text == "three"
    )


def test_follow_ups_all_mode_take_two_turns():
    agent, stream_fn, rec = scripted_agent(["one", "two"], follow_up_mode="all")
    agent.follow_up(UserMessage(content=[TextContent(text="f1")]))
    agent.follow_up(UserMessage(content=[TextContent(text="f2")]))
    run(agent.prompt("start"))
    assert len(stream_fn.calls) == 2
    second_turn = rec.labels[rec.labels.index("turn_end") + 1 :]
    assert second_turn[:5] == [
        "turn_start",
        "message_start",
        "message_end",
        "message_start",
        "message_end",
    ]
    assert [extract(m) for m in stream_fn.calls[1].context.messages[-2:]] == ["f1", "f2"]


def test_continue_has_no_user_events():
    agent, _, rec = scripted_agent(["continued"])
    agent.replace_messages([UserMessage(content=[TextContent(text="earlier")])])
    reply = run(agent.continue_())
    assert rec.labels == ["agent_start", "turn_start", *TEXT_REPLY, "turn_end", "agent_end"]
    assert isinstance(reply, AssistantMessage) and extract(reply) == "continued"


def test_continue_after_tool_result():
    agent, stream_fn, _ = scripted_agent(["used the result"])
    agent.replace_messages(
        [
            UserMessage(content=[TextContent(text="q")]),
            ToolResultMessage(tool_call_id="c1", tool_name="sum", content=[TextContent(text="3")]),
        ]
    )
    run(agent.continue_())
    assert [m.role for m in stream_fn.calls[0].context.messages] == ["user", "tool_result"]
