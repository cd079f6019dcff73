"""``RunOptions``: settings for one run, merged over the Agent's own, which stay as they were."""

from __future__ import annotations

import pytest
from support.agent_support import (
    run,
    scripted_agent,
    scripted_model,
    sum_calls,
    sum_tool,
)

from tinyagent import Agent, AgentOptions, Model, RunOptions, ThinkingLevel, ToolLoopControl


def test_per_run_settings_reach_the_model_call_and_leave_the_agent_unchanged():
    agent, stream_fn, _ = scripted_agent(["one", "two"], temperature=0.5, max_tokens=100)
    agent.set_system_prompt("agent prompt")
    other = Model(provider="test", id="other-model", api="scripted")
    options = RunOptions(
        model=other,
        system_prompt="run prompt",
        temperature=None,  # None is a value: "send no temperature" for this run
        max_tokens=7,
        thinking_level=ThinkingLevel.HIGH,
        session_id="run-session",
    )
    assert run(agent.prompt_text("first", options=options)) == "one"
    assert run(agent.prompt_text("second")) == "two"

    (first, second) = stream_fn.calls
    assert first.model is other and first.context.system_prompt == "run prompt"
    assert first.options.temperature is None and first.options.max_tokens == 7
    assert first.options.reasoning == "high" and first.options.session_id == "run-session"
    # the next run, without options, is the Agent's own again
    assert second.model.id == "scripted-model" and second.context.system_prompt == "agent prompt"
    assert second.options.temperature == 0.5 and second.options.max_tokens == 100
    assert agent.temperature == 0.5 and agent.state.model.id == "scripted-model"


def test_per_run_tools_and_hooks():
    seen = []

    def before(tool_call, tool, args):
        seen.append(tool_call.name)
        return ToolLoopControl()

    script = [sum_calls((1, 2)), "3"]
    agent, stream_fn, _ = scripted_agent(script)
    options = RunOptions(tools=[sum_tool()], before_tool_call=before)
    run(agent.prompt("add", options=options))

    assert [t.name for t in stream_fn.calls[0].context.tools] == ["sum"]
    assert seen == ["sum"]
    assert agent.state.tools == [] and agent.before_tool_call is None
    result = next(m for m in agent.state.messages if m.role == "tool_result")
    assert not result.is_error and result.content[0].text == "3"


def test_a_run_needs_a_model_from_the_agent_or_its_options():
    agent = Agent(AgentOptions(stream_fn=scripted_agent(["hi"])[1]))
    with pytest.raises(RuntimeError, match="No model configured"):
        run(agent.prompt("x"))
    assert run(agent.prompt_text("x", options=RunOptions(model=scripted_model()))) == "hi"
    assert agent.state.model is None


def test_per_run_prompt_caching_marks_only_that_run():
    agent, stream_fn, _ = scripted_agent(["a", "b"])
    run(agent.prompt("cached", options=RunOptions(enable_prompt_caching=True)))
    run(agent.prompt("plain"))
    first, second = (c.context.messages[-1].content[-1] for c in stream_fn.calls)
    assert first.cache_control is not None and second.cache_control is None
    assert agent.enable_prompt_caching is False


def test_stream_and_continue_take_options_too():
    agent, stream_fn, _ = scripted_agent(["streamed", "continued"])

    async def main():
        events = [e async for e in agent.stream("go", options=RunOptions(max_tokens=3))]
        agent.append_message(agent.state.messages[0].model_copy())  # end on a user message
        reply = await agent.continue_(options=RunOptions(max_tokens=4))
        return events, reply

    events, reply = run(main())
    assert events[-1].type == "agent_end" and reply.content[0].text == "continued"
    assert [c.options.max_tokens for c in stream_fn.calls] == [3, 4]


def test_options_must_be_run_options():
    agent, _, _ = scripted_agent(["x"])
    with pytest.raises(TypeError, match="RunOptions"):
        run(agent.prompt("x", options={"temperature": 0}))  # type: ignore[arg-type]
    assert not agent.state.is_streaming
