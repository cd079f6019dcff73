"""Agent state, listeners, errors, input normalization and what each LLM call receives
(docs/architecture.md#agent, docs/events.md#llm-call)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import pytest
from support.agent_support import (
    ScriptedReply,
    ScriptedStreamFn,
    ScriptedToolCall,
    run,
    scripted_agent,
    scripted_model,
    sum_calls,
    sum_tool,
)

from tinyagent import (
    Agent,
    AgentOptions,
    AgentState,
    AssistantMessage,
    AssistantMessageEvent,
    CustomAgentMessage,
    ImageContent,
    TextContent,
    ThinkingLevel,
    UserMessage,
    default_convert_to_llm,
    extract_text,
)
from tinyagent.agent_types import ZERO_USAGE


def test_agent_options_fields_in_contract_order():
    names = [f.name for f in dataclasses.fields(AgentOptions)]
    assert names == [
        "initial_state",
        "convert_to_llm",
        "transform_context",
        "steering_mode",
        "follow_up_mode",
        "stream_fn",
        "session_id",
        "get_api_key",
        "thinking_budgets",
        "enable_prompt_caching",
        "before_tool_call",
        "after_tool_call",
        "should_stop_after_turn",
        "temperature",
        "max_tokens",
        "max_turns",
    ]
    opts = AgentOptions()
    assert opts.convert_to_llm is default_convert_to_llm
    assert (opts.steering_mode, opts.follow_up_mode, opts.max_turns) == (
        "one-at-a-time",
        "one-at-a-time",
        100,
    )


def test_state_is_updated_before_listeners_see_the_event():
    script = [sum_calls((1, 2)), "3"]
    agent, _, _ = scripted_agent(script, tools=[sum_tool()])
    observed = []

    def check(event):
        state = agent.state
        if event.type in ("message_start", "message_update"):
            observed.append(state.stream_message is event.message)
        elif event.type == "message_end":
            observed.append(state.messages[-1] is event.message and state.stream_message is None)
        elif event.type == "tool_execution_start":
            observed.append(event.tool_call_id in state.pending_tool_calls)
        elif event.type == "tool_execution_end":
            observed.append(event.tool_call_id not in state.pending_tool_calls)
        elif event.type == "agent_end":
            observed.append(not state.is_streaming)
        elif event.type == "agent_start":
            observed.append(state.is_streaming)

    agent.subscribe(check)
    run(agent.prompt("add"))
    assert observed and all(observed)
    assert [m.role for m in agent.state.messages] == [
        "user",
        "assistant",
        "tool_result",
        "assistant",
    ]
    assert agent.state.pending_tool_calls == set()


def test_listeners_called_in_subscription_order_and_subscribe_is_idempotent():
    agent, _, _ = scripted_agent(["hi"])
    calls: list[str] = []

    def first(event):
        calls.append("first")

    def second(event):
        calls.append("second")

    agent.subscribe(first)
    unsubscribe_second = agent.subscribe(second)
    agent.subscribe(first)  # already subscribed: no-op
    run(agent.prompt("x"))
    assert calls[:4] == ["first", "second", "first", "second"]
    assert calls.count("first") == calls.count("second")
    unsubscribe_second()
    unsubscribe_second()  # idempotent
    calls.clear()
    agent.stream_fn = ScriptedStreamFn(["again"])
    run(agent.prompt("y"))
    assert set(calls) == {"first"}


def test_listener_returning_awaitable_is_closed_and_warned(caplog):
    agent, _, _ = scripted_agent(["hi"])
    created = []

    async def async_listener(event):
        raise AssertionError("never awaited")

    def wrapper(event):
        coro = async_listener(event)
        created.append(coro)
        return coro

    agent.subscribe(wrapper)
    with caplog.at_level(logging.WARNING, logger="tinyagent"):
        reply = run(agent.prompt("x"))
    assert reply.stop_reason == "stop"
    assert created and all(c.cr_frame is None for c in created)  # closed, never run
    assert "returned an awaitable" in caplog.text


def test_listener_failure_on_agent_end_is_only_logged(caplog):
    agent, _, _ = scripted_agent(["fine"])

    def explode_at_end(event):
        if event.type == "agent_end":
            raise RuntimeError("late")

    agent.subscribe(explode_at_end)
    with caplog.at_level(logging.ERROR, logger="tinyagent"):
        reply = run(agent.prompt("x"))
    assert reply.stop_reason == "stop" and agent.state.error is None
    assert "listener explode_at_end failed" in caplog.text


def test_listener_failure_with_no_message_in_flight_closes_with_synthetic_error():
    agent, stream_fn, rec = scripted_agent(["never"])

    def fail_on_start(event):
        if event.type == "agent_start":
            raise KeyError("boom")

    agent.subscribe(fail_on_start)
    reply = run(agent.prompt("x"))
    assert reply.stop_reason == "error"
    assert reply.error_message == "listener fail_on_start failed: KeyError: 'boom'"
    assert stream_fn.calls == []
    assert rec.labels.count("agent_end") == 1
    assert rec.labels[-4:] == ["message_start", "message_end", "turn_end", "agent_end"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda a: a.prompt([]),
            "prompt() needs at least one message; use continue_() to continue",
        ),
        (
            lambda a: a.prompt(
                [UserMessage(content=[TextContent(text="x")])],
                images=[ImageContent(url="https://x/y.png")],
            ),
            "images are only accepted together with a str prompt",
        ),
    ],
)
def test_bad_prompt_input_raises_value_error(call, message):
    agent, stream_fn, rec = scripted_agent(["never"])
    with pytest.raises(ValueError) as info:
        run(call(agent))
    assert str(info.value) == message
    assert rec.events == [] and stream_fn.calls == []
    assert not agent.state.is_streaming


def test_runtime_errors_of_prompt_and_continue():
    agent = Agent()
    with pytest.raises(RuntimeError, match="^No model configured$"):
        run(agent.prompt("x"))
    agent.set_model(scripted_model())
    with pytest.raises(RuntimeError, match="^No messages to continue from$"):
        run(agent.continue_())
    agent.replace_messages([AssistantMessage(content=[TextContent(text="a")], stop_reason="stop")])
    with pytest.raises(RuntimeError, match="^Cannot continue from message role: assistant$"):
        run(agent.continue_())


def test_already_processing_messages():
    agent, _, _ = scripted_agent([ScriptedReply(text="slow", delay=0.05), "second"])

    async def main():
        first = asyncio.ensure_future(agent.prompt("one"))
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError) as busy_prompt:
            await agent.prompt("two")
        with pytest.raises(RuntimeError) as busy_continue:
            await agent.continue_()
        with pytest.raises(RuntimeError):
            async for _ in agent.stream("three"):
                pass
        await first
        return str(busy_prompt.value), str(busy_continue.value)

    prompt_msg, continue_msg = run(main())
    assert prompt_msg == (
        "Agent is already processing a prompt. Use steer() or follow_up() to queue messages, "
        "or wait for completion."
    )
    assert continue_msg == "Agent is already processing. Wait for completion before continuing."


def test_stream_simple_fallback_ends_with_error_message():
    agent = Agent()
    agent.set_model(scripted_model())
    reply = run(agent.prompt("x"))
    assert reply.stop_reason == "error"
    assert reply.error_message == "stream_simple must be provided"


def test_str_prompt_with_images_and_epoch_ms_timestamps():
    agent, stream_fn, _ = scripted_agent(
        [ScriptedReply(tool_calls=[ScriptedToolCall("nope", {})]), "done"], max_turns=5
    )
    before = int(time.time() * 1000)
    run(
        agent.prompt(
            "look", images=[ImageContent(url="data:image/png;base64,AAAA", mime_type="image/png")]
        )
    )
    after = int(time.time() * 1000)
    user, assistant, tool_result, final = agent.state.messages
    assert [b.type for b in user.content] == ["text", "image"]
    for message in (user, tool_result):
        assert isinstance(message.timestamp, int) and before <= message.timestamp <= after
    assert tool_result.content[0].text == "Tool nope not found"


def test_synthetic_messages_have_epoch_ms_and_fresh_usage():
    agent, _, _ = scripted_agent([], max_turns=0)
    reply = run(agent.prompt("x"))
    assert abs(reply.timestamp - int(time.time() * 1000)) < 5000
    assert reply.usage == ZERO_USAGE and reply.usage is not ZERO_USAGE
    assert reply.usage["cost"] is not ZERO_USAGE["cost"]
    reply.usage["cost"]["total"] = 99.0
    assert ZERO_USAGE["cost"]["total"] == 0.0


def test_initial_state_is_copied_not_aliased():
    history = [UserMessage(content=[TextContent(text="old")])]
    initial = AgentState(system_prompt="sys", messages=history, model=scripted_model())
    agent = Agent(AgentOptions(initial_state=initial, stream_fn=scripted_agent(["new"])[1]))
    assert agent.state is not initial
    run(agent.prompt("x"))
    assert len(history) == 1 and len(initial.messages) == 1
    assert [m.role for m in agent.state.messages] == ["user", "user", "assistant"]
    assert agent.state.system_prompt == "sys"


def test_sync_transform_context_and_call_inputs():
    seen = {}

    def transform(messages, signal):
        seen["signal"] = signal
        return [*messages, UserMessage(content=[TextContent(text="injected")])]

    async def get_key(provider):
        seen["provider"] = provider
        return "sk-from-resolver"

    agent, stream_fn, _ = scripted_agent(
        ["ok"],
        transform_context=transform,
        get_api_key=get_key,
        session_id="sess-1",
        temperature=0.3,
        max_tokens=77,
    )
    agent.set_system_prompt("be brief")
    agent.set_thinking_level(ThinkingLevel.HIGH)
    run(agent.prompt("x"))
    call = stream_fn.calls[0]
    assert [extract_text(m) for m in call.context.messages] == ["x", "injected"]
    assert call.context.system_prompt == "be brief"
    assert isinstance(seen["signal"], asyncio.Event)
    options = call.options
    assert (options.api_key, options.session_id, options.temperature, options.max_tokens) == (
        "sk-from-resolver",
        "sess-1",
        0.3,
        77,
    )
    assert options.reasoning == "high"
    assert seen["provider"] == "test"
    assert [m.role for m in agent.state.messages] == ["user", "assistant"]  # transform not stored


def test_thinking_off_sends_no_reasoning_and_attributes_apply_per_run():
    agent, stream_fn, _ = scripted_agent(["a", "b"])
    run(agent.prompt("x"))
    agent.temperature, agent.max_tokens = 0.9, 12
    run(agent.prompt("y"))
    first, second = stream_fn.calls
    assert first.options.reasoning is None and first.options.temperature is None
    assert (second.options.temperature, second.options.max_tokens) == (0.9, 12)


def test_default_convert_to_llm_drops_custom_messages():
    class Note(CustomAgentMessage):
        role: str = "note"
        text: str = ""

    agent, stream_fn, _ = scripted_agent(["ok"])
    agent.append_message(Note(text="ui only"))
    run(agent.prompt("x"))
    assert [m.role for m in stream_fn.calls[0].context.messages] == ["user"]
    assert agent.state.messages[0].role == "note"


def test_stream_yields_the_listener_events():
    agent, _, rec = scripted_agent(["streamed reply"])

    async def collect():
        return [event async for event in agent.stream("x")]

    events = run(collect())
    assert events == rec.events
    assert events[-1].type == "agent_end"


def test_stream_text_yields_the_text_deltas():
    agent, _, _ = scripted_agent([ScriptedReply(text="Hello brave new world", thinking="hmm")])

    async def collect():
        return [piece async for piece in agent.stream_text("x")]

    pieces = run(collect())
    assert "".join(pieces) == "Hello brave new world"
    assert len(pieces) > 1


def test_update_before_start_gets_synthesized_message_start():
    agent, _, rec = scripted_agent([ScriptedReply(text="no start event", send_start=False)])
    reply = run(agent.prompt("x"))
    assert rec.labels[4:6] == ["message_start", "upd[text_start]"]
    assert rec.labels.count("message_start") == rec.labels.count("message_end") == 2
    assert extract_text(reply) == "no start event"


def test_stream_without_terminal_event_still_ends_the_message():
    agent, _, rec = scripted_agent([ScriptedReply(text="cut", send_terminal=False)])
    reply = run(agent.prompt("x"))
    assert rec.labels[-3:] == ["message_end", "turn_end", "agent_end"]
    assert reply.stop_reason == "stop" and extract_text(reply) == "cut"


def test_unsupported_event_payload_becomes_error_message():
    class BadResponse:
        def __aiter__(self):
            return self

        async def __anext__(self):
            return {"type": "text_delta"}

        async def result(self):
            raise AssertionError

    async def stream_fn(model, context, options):
        return BadResponse()

    agent, _, rec = scripted_agent([])
    agent.stream_fn = stream_fn
    reply = run(agent.prompt("x"))
    assert reply.error_message == "Unsupported assistant event payload: dict"
    assert rec.labels.count("agent_end") == 1


def test_should_stop_after_turn_gets_live_objects_and_stops():
    seen = {}

    def should_stop(message, tool_results, context, new_messages):
        seen.update(message=message, tool_results=tool_results, context=context, new=new_messages)
        return True

    script = [sum_calls((1, 2)), "never"]
    agent, stream_fn, rec = scripted_agent(
        script, tools=[sum_tool()], should_stop_after_turn=should_stop
    )
    run(agent.prompt("x"))
    assert len(stream_fn.calls) == 1
    turn_end = rec.of_type("turn_end")[0]
    assert seen["message"] is turn_end.message
    assert seen["tool_results"][0] is turn_end.tool_results[0]
    assert seen["new"] is rec.events[-1].messages
    assert seen["context"].messages[-1] is turn_end.tool_results[0]
    assert agent.state.error is None


def test_should_stop_after_turn_raising_sets_state_error(caplog):
    def should_stop(message, tool_results, context, new_messages):
        raise ZeroDivisionError("bad hook")

    agent, stream_fn, rec = scripted_agent(["one", "never"], should_stop_after_turn=should_stop)
    with caplog.at_level(logging.ERROR, logger="tinyagent"):
        run(agent.prompt("x"))
    assert agent.state.error == "should_stop_after_turn failed: ZeroDivisionError: bad hook"
    assert len(stream_fn.calls) == 1
    assert rec.labels.count("agent_end") == 1
    assert "should_stop_after_turn failed" in caplog.text


def test_reset_keeps_configuration():
    agent, _, _ = scripted_agent(["a"], tools=[sum_tool()])
    agent.set_system_prompt("sys")
    agent.set_thinking_level(ThinkingLevel.LOW)
    agent.steer(UserMessage(content=[TextContent(text="s")]))
    run(agent.prompt("x"))
    agent.follow_up(UserMessage(content=[TextContent(text="f")]))
    agent.reset()
    state = agent.state
    assert (state.messages, state.error, state.is_streaming, state.pending_tool_calls) == (
        [],
        None,
        False,
        set(),
    )
    assert state.system_prompt == "sys" and state.thinking_level == ThinkingLevel.LOW
    assert state.model is not None and len(state.tools) == 1


def test_modes_and_message_helpers():
    agent = Agent(AgentOptions(steering_mode="", follow_up_mode="all"))
    assert agent.get_steering_mode() == "one-at-a-time"
    assert agent.get_follow_up_mode() == "all"
    agent.set_steering_mode("weird")
    assert agent.get_steering_mode() == "weird"
    original = [UserMessage(content=[TextContent(text="a")])]
    agent.replace_messages(original)
    assert agent.state.messages == original and agent.state.messages is not original
    before = agent.state.messages
    agent.append_message(UserMessage(content=[TextContent(text="b")]))
    assert agent.state.messages is not before and len(agent.state.messages) == 2


def test_extract_text():
    assert extract_text(None) == ""
    assert extract_text(CustomAgentMessage(role="x")) == ""
    msg = AssistantMessage(content=[TextContent(text="a"), None, TextContent(text="b")])
    assert extract_text(msg) == "ab"


def test_secrets_are_not_in_reprs():
    from tinyagent import AgentLoopConfig, SimpleStreamOptions
    from tinyagent.proxy import ProxyStreamOptions

    assert "sk-secret" not in repr(
        SimpleStreamOptions(api_key="sk-secret", headers={"X-Key": "sk-secret"})
    )
    config = AgentLoopConfig(
        model=scripted_model(), convert_to_llm=default_convert_to_llm, api_key="sk-secret"
    )
    assert "sk-secret" not in repr(config)
    assert "tok-secret" not in repr(
        ProxyStreamOptions(auth_token="tok-secret", proxy_url="http://x")
    )


def test_provider_error_text_never_carries_the_key():
    async def get_key(provider):
        return "sk-very-secret"

    async def stream_fn(model, context, options):
        raise RuntimeError(f"401 invalid key {options.api_key}")

    agent, _, _ = scripted_agent([], get_api_key=get_key)
    agent.stream_fn = stream_fn
    reply = run(agent.prompt("x"))
    assert reply.stop_reason == "error"
    assert reply.error_message == "401 invalid key ***"


def test_recorder_sees_exactly_one_agent_end_on_every_failure_path():
    scripts = [
        [ScriptedReply(text="x", error="e")],
        [ScriptedReply(text="x", raise_error=OSError("o"))],
        [ScriptedReply(text="x", send_terminal=False)],
        [ScriptedReply(tool_calls=[ScriptedToolCall("missing", {})]), "end"],
    ]
    for script in scripts:
        agent, _, rec = scripted_agent(script)
        run(agent.prompt("x"))
        assert [e.type for e in rec.events].count("agent_end") == 1
        assert rec.events[-1].type == "agent_end"
        starts, ends = rec.labels.count("message_start"), rec.labels.count("message_end")
        assert starts == ends


def test_stream_text_from_a_provider_without_text_deltas():
    class WholeBlocks:
        def __init__(self):
            partial = AssistantMessage(
                content=[TextContent(text="all at once")], stop_reason="stop"
            )
            self.events = iter(
                [
                    AssistantMessageEvent(type="start", partial=partial),
                    AssistantMessageEvent(type="text_start", content_index=0, partial=partial),
                    AssistantMessageEvent(
                        type="text_end", content_index=0, content="all at once", partial=partial
                    ),
                    AssistantMessageEvent(type="done", reason="stop", message=partial),
                ]
            )
            self.final = partial

        def __aiter__(self):
            return self

        async def __anext__(self):
            try:
                return next(self.events)
            except StopIteration:
                raise StopAsyncIteration from None

        async def result(self):
            return self.final

    async def stream_fn(model, context, options):
        return WholeBlocks()

    agent, _, _ = scripted_agent([])
    agent.stream_fn = stream_fn

    async def collect():
        return [piece async for piece in agent.stream_text("x")]

    assert run(collect()) == ["all at once"]


def test_agent_loop_needs_a_running_loop():
    from tinyagent import AgentContext, AgentLoopConfig, agent_loop

    config = AgentLoopConfig(model=scripted_model(), convert_to_llm=default_convert_to_llm)
    with pytest.raises(RuntimeError):
        agent_loop([UserMessage(content=[TextContent(text="x")])], AgentContext(), config)


@pytest.mark.parametrize("failing", ["transform_context", "convert_to_llm", "get_api_key"])
def test_failing_context_callbacks_become_error_messages(failing):
    def broken(*args):
        raise ValueError(f"{failing} broke")

    agent, stream_fn, rec = scripted_agent(["never"], **{failing: broken})
    reply = run(agent.prompt("x"))
    assert reply.stop_reason == "error" and reply.error_message == f"{failing} broke"
    assert stream_fn.calls == []
    assert rec.labels[-4:] == ["message_start", "message_end", "turn_end", "agent_end"]
