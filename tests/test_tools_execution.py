"""Tool validation, execution, hooks and skip_tool_call.

See docs/events.md#argument-validation, docs/events.md#tool-batch and docs/events.md#hooks.
"""

from __future__ import annotations

import asyncio

import pytest
from support.agent_support import (
    SUM_SCHEMA,
    ScriptedReply,
    ScriptedToolCall,
    run,
    scripted_agent,
    sum_calls,
    sum_tool,
)

from tinyagent import (
    AgentTool,
    AgentToolResult,
    AssistantMessage,
    EventStream,
    TextContent,
    ToolCallContent,
    ToolLoopControl,
    UserMessage,
    execute_tool_calls,
    skip_tool_call,
    validate_tool_arguments,
)
from tinyagent.agent_tool_execution import ToolArgumentsError, ToolExecutionResult


def call(name="sum", arguments=None, partial_json=None, id="c1"):
    return ToolCallContent(
        id=id,
        name=name,
        arguments=arguments if arguments is not None else {},
        partial_json=partial_json,
    )


def text(result_message):
    return "".join(b.text for b in result_message.content)


# -- validate_tool_arguments --------------------------------------------------------------------


def test_valid_arguments_are_returned_unchanged_as_the_same_object():
    tool_call = call(arguments={"a": 1, "b": 2.5})
    assert validate_tool_arguments(sum_tool(), tool_call) is tool_call.arguments


def test_schema_violations_one_line_each():
    with pytest.raises(ToolArgumentsError) as info:
        validate_tool_arguments(sum_tool(name="add"), call(name="add", arguments={"b": "x"}))
    err = info.value
    assert isinstance(err, ValueError)
    assert str(err) == (
        "Invalid arguments for tool 'add':\n- /b: 'x' is not of type 'number'\n- (root): 'a' is a required property"
    )
    assert err.tool_name == "add"
    assert err.errors == ["/b: 'x' is not of type 'number'", "(root): 'a' is a required property"]


def test_unparseable_arguments_are_reported_with_the_raw_text():
    with pytest.raises(ToolArgumentsError) as info:
        validate_tool_arguments(sum_tool(), call(arguments={}, partial_json='{"a": 1, "b"'))
    message = str(info.value)
    assert message.startswith("Arguments for tool 'sum' are not valid JSON: ")
    assert message.endswith('; received: {"a": 1, "b"')
    assert info.value.raw == '{"a": 1, "b"'


def test_string_arguments_are_parsed_and_non_objects_rejected():
    tool = AgentTool(name="t", parameters={})
    assert validate_tool_arguments(
        tool,
        ToolCallContent.model_construct(
            type="tool_call", id="1", name="t", arguments='{"x": 1}', partial_json=None
        ),
    ) == {"x": 1}
    with pytest.raises(
        ToolArgumentsError,
        match=r"^Arguments for tool 't' are not valid JSON: expected a JSON object, got list; received: \[1, 2\]$",
    ):
        validate_tool_arguments(
            tool,
            ToolCallContent.model_construct(
                type="tool_call", id="1", name="t", arguments="[1, 2]", partial_json=None
            ),
        )


def test_long_raw_text_is_cut_to_200_chars():
    raw = "{" + "x" * 500
    with pytest.raises(ToolArgumentsError) as info:
        validate_tool_arguments(sum_tool(), call(partial_json=raw))
    assert str(info.value).endswith("received: " + raw[:200])


def test_empty_schema_and_no_arguments():
    assert validate_tool_arguments(AgentTool(name="t"), call(name="t")) == {}


def test_invalid_schema_is_reported():
    tool = AgentTool(
        name="broken", parameters={"type": "object", "properties": {"a": {"type": 12}}}
    )
    with pytest.raises(
        ToolArgumentsError, match=r"^Tool 'broken' has an invalid parameters schema: "
    ):
        validate_tool_arguments(tool, call(name="broken", arguments={"a": 1}))


def test_draft_07_schema_with_definitions_works():
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "definitions": {"city": {"type": "string", "minLength": 2}},
        "properties": {
            "city": {"$ref": "#/definitions/city"},
            "days": {"type": "integer", "maximum": 7},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    tool = AgentTool(name="weather", parameters=schema)
    assert validate_tool_arguments(
        tool, call(name="weather", arguments={"city": "Oslo", "days": 3})
    ) == {"city": "Oslo", "days": 3}
    with pytest.raises(ToolArgumentsError) as info:
        validate_tool_arguments(
            tool, call(name="weather", arguments={"city": "X", "days": 9, "extra": 1})
        )
    assert len(info.value.errors) == 3


# -- execute_tool_calls -------------------------------------------------------------------------


def collect_stream():
    stream = EventStream(lambda e: False, lambda e: None)
    events = []
    stream.push = events.append  # the loop emits only through push
    return stream, events


def test_no_tool_calls_means_no_events_and_no_poll():
    polled = []

    async def poll():
        polled.append(1)
        return []

    stream, events = collect_stream()
    result = run(
        execute_tool_calls(
            [], AssistantMessage(content=[TextContent(text="hi")]), None, stream, poll
        )
    )
    assert isinstance(result, ToolExecutionResult) and result.tool_results == []
    assert events == [] and polled == []


def test_calls_run_concurrently_and_report_in_call_order():
    both_started = asyncio.Event
    started: list[str] = []
    gate: dict[str, asyncio.Event] = {}

    async def first(tool_call_id, args, signal, on_update):
        started.append("first")
        await gate["second_started"].wait()  # deadlocks unless the calls run concurrently
        await asyncio.sleep(0.02)
        return AgentToolResult(content=[TextContent(text="first")])

    async def second(tool_call_id, args, signal, on_update):
        started.append("second")
        gate["second_started"].set()
        on_update(AgentToolResult(content=[TextContent(text="halfway")]))
        return AgentToolResult(content=[TextContent(text="second")])

    del both_started
    tools = [AgentTool(name="first", execute=first), AgentTool(name="second", execute=second)]
    message = AssistantMessage(content=[call("first", id="1"), call("second", id="2")])

    async def main():
        gate["second_started"] = asyncio.Event()
        stream, events = collect_stream()
        result = await execute_tool_calls(tools, message, None, stream)
        return result, events

    result, events = run(main())
    assert [e.type for e in events] == [
        "tool_execution_start",
        "tool_execution_start",
        "tool_execution_update",
        "tool_execution_end",
        "message_start",
        "message_end",
        "tool_execution_end",
        "message_start",
        "message_end",
    ]
    assert [text(r) for r in result.tool_results] == ["first", "second"]
    assert events[2].partial_result.content[0].text == "halfway"
    assert all(isinstance(r.timestamp, int) for r in result.tool_results)


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        (None, "Tool sum not found"),
        (AgentTool(name="sum"), "Tool sum has no execute function"),
    ],
)
def test_error_results_for_unusable_tools(tool, expected):
    stream, _ = collect_stream()
    message = AssistantMessage(content=[call(arguments={"a": 1, "b": 2})])
    result = run(execute_tool_calls([tool] if tool else None, message, None, stream))
    (result_message,) = result.tool_results
    assert result_message.is_error and text(result_message) == expected


def test_tool_exceptions_wrong_returns_and_own_cancellation():
    async def raises(*_):
        raise LookupError("no such row")

    async def returns_dict(*_):
        return {"content": []}

    async def cancels_itself(*_):
        raise asyncio.CancelledError

    tools = [
        AgentTool(name="raises", execute=raises),
        AgentTool(name="dict", execute=returns_dict),
        AgentTool(name="cancel", execute=cancels_itself),
    ]
    message = AssistantMessage(
        content=[call("raises", id="1"), call("dict", id="2"), call("cancel", id="3")]
    )
    stream, _ = collect_stream()
    result = run(execute_tool_calls(tools, message, None, stream))
    assert [(r.is_error, text(r)) for r in result.tool_results] == [
        (True, "no such row"),
        (True, "Tool dict returned dict; expected AgentToolResult"),
        (True, "Tool execution cancelled"),
    ]


def test_invalid_arguments_never_reach_the_tool_or_the_before_hook():
    calls = []

    async def execute(tool_call_id, args, signal, on_update):
        calls.append(args)
        return AgentToolResult()

    def before(tool_call, tool, args):
        calls.append("hook")

    script = [ScriptedReply(tool_calls=[ScriptedToolCall("sum", {"a": "1"})]), "fixed"]
    agent, stream_fn, _ = scripted_agent(script, tools=[sum_tool(execute)], before_tool_call=before)
    run(agent.prompt("x"))
    assert calls == []
    tool_result = agent.state.messages[2]
    assert tool_result.is_error
    assert text(tool_result) == (
        "Invalid arguments for tool 'sum':\n- /a: '1' is not of type 'number'\n- (root): 'b' is a required property\n"
        "Fix the arguments and call the tool again."
    )
    assert stream_fn.calls[1].context.messages[-1] is tool_result  # the model can retry


def test_before_hook_answers_for_unknown_tools_and_can_terminate():
    def before(tool_call, tool, args):
        assert tool is None and args == {"q": 1}
        return ToolLoopControl(
            result=AgentToolResult(content=[TextContent(text="handled")]),
            is_error=False,
            terminate=True,
        )

    script = [ScriptedReply(tool_calls=[ScriptedToolCall("virtual", {"q": 1})]), "never"]
    agent, stream_fn, _ = scripted_agent(script, before_tool_call=before)
    run(agent.prompt("x"))
    tool_result = agent.state.messages[2]
    assert (tool_result.is_error, text(tool_result), tool_result.terminate) == (
        False,
        "handled",
        True,
    )
    assert len(stream_fn.calls) == 1  # terminal batch: no further call
    assert agent.state.error is None


def test_before_hook_result_defaults_to_error_and_terminate_only_still_runs_the_tool():
    ran = []

    async def execute(tool_call_id, args, signal, on_update):
        ran.append(tool_call_id)
        return AgentToolResult(content=[TextContent(text="ran")])

    def before(tool_call, tool, args):
        if tool_call.id == "call_1":
            return ToolLoopControl(result=AgentToolResult(content=[TextContent(text="blocked")]))
        return ToolLoopControl(terminate=True)

    script = [sum_calls((1, 1), (2, 2))]
    agent, stream_fn, rec = scripted_agent(
        script, tools=[sum_tool(execute)], before_tool_call=before
    )
    run(agent.prompt("x"))
    blocked, executed = agent.state.messages[2:4]
    assert (blocked.is_error, text(blocked)) == (True, "blocked")
    assert (executed.is_error, text(executed), executed.terminate) == (False, "ran", True)
    assert ran == ["call_2"]
    assert rec.events[-2].type == "turn_end" and len(stream_fn.calls) == 1


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        (lambda *a: 1 / 0, "before_tool_call hook failed: ZeroDivisionError: division by zero"),
        (lambda *a: "yes", "before_tool_call must return ToolLoopControl or None, got str"),
    ],
)
def test_misbehaving_before_hook_gives_error_result(hook, expected):
    script = [sum_calls((1, 1)), "recovered"]
    agent, _, _ = scripted_agent(script, tools=[sum_tool()], before_tool_call=hook)
    reply = run(agent.prompt("x"))
    assert text(agent.state.messages[2]) == expected and agent.state.messages[2].is_error
    assert reply.stop_reason == "stop"  # the run continued


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        (lambda *a: 1 / 0, "after_tool_call hook failed: ZeroDivisionError: division by zero"),
        (lambda *a: 42, "after_tool_call must return ToolLoopControl or None, got int"),
    ],
)
def test_misbehaving_after_hook_gives_error_result(hook, expected):
    script = [sum_calls((1, 1)), "recovered"]
    agent, _, _ = scripted_agent(script, tools=[sum_tool()], after_tool_call=hook)
    reply = run(agent.prompt("x"))
    assert text(agent.state.messages[2]) == expected and agent.state.messages[2].is_error
    assert reply.stop_reason == "stop"


def test_after_hook_replaces_or_updates_results_in_call_order():
    order = []

    async def after(tool_call, result_message):
        order.append(tool_call.id)
        if tool_call.id == "call_1":
            return ToolLoopControl(
                result=AgentToolResult(content=[TextContent(text="replaced")], details={"k": 1})
            )
        return ToolLoopControl(is_error=True)

    script = [
        sum_calls((1, 1), (2, 2)),
        "ok",
    ]
    agent, _, rec = scripted_agent(script, tools=[sum_tool()], after_tool_call=after)
    run(agent.prompt("x"))
    replaced, flagged = agent.state.messages[2:4]
    assert order == ["call_1", "call_2"]
    assert (text(replaced), replaced.is_error, replaced.details) == ("replaced", False, {"k": 1})
    assert (text(flagged), flagged.is_error) == ("4", True)
    ends = rec.of_type("tool_execution_end")
    assert [e.is_error for e in ends] == [False, True]


def test_steering_is_polled_once_after_a_batch():
    polls = []
    steer = UserMessage(content=[TextContent(text="steer!")])
    queued = [[steer]]

    async def poll():
        polls.append(1)
        return queued.pop() if queued else []

    stream, _ = collect_stream()
    message = AssistantMessage(content=[call(arguments={"a": 1, "b": 2})])
    result = run(execute_tool_calls([sum_tool()], message, None, stream, poll))
    assert polls == [1] and result.steering_messages[0] is steer


def test_skip_tool_call():
    stream, events = collect_stream()
    message = skip_tool_call(call(arguments={"a": 1}), stream)
    assert [e.type for e in events] == [
        "tool_execution_start",
        "tool_execution_end",
        "message_start",
        "message_end",
    ]
    assert message.is_error and text(message) == "Skipped due to queued user message."
    assert events[1].is_error and events[1].args == {"a": 1}


def test_tool_arguments_error_attributes():
    err = ToolArgumentsError("m", tool_name="t", errors=["(root): x"], raw="{")
    assert (err.tool_name, err.errors, err.raw, str(err)) == ("t", ["(root): x"], "{", "m")
    assert SUM_SCHEMA["required"] == ["a", "b"]


def test_end_event_carries_the_tools_result_object_and_bad_content_is_an_error():
    returned = AgentToolResult(content=[TextContent(text="ok")], details={"rows": 2})

    async def good(*_):
        return returned

    async def bad(*_):
        return AgentToolResult(content=["not a block"])

    tools = [AgentTool(name="good", execute=good), AgentTool(name="bad", execute=bad)]
    message = AssistantMessage(content=[call("good", id="1"), call("bad", id="2")])
    stream, events = collect_stream()
    result = run(execute_tool_calls(tools, message, None, stream))
    ends = [e for e in events if e.type == "tool_execution_end"]
    assert ends[0].result is returned and result.tool_results[0].details == {"rows": 2}
    assert ends[1].is_error and text(result.tool_results[1]).startswith(
        "Tool bad returned invalid content: "
    )


def test_undeclared_draft_07_tuple_items_fall_back_to_draft_07():
    schema = {
        "type": "object",
        "properties": {
            "point": {"type": "array", "items": [{"type": "number"}, {"type": "number"}]}
        },
    }
    tool = AgentTool(name="plot", parameters=schema)
    assert validate_tool_arguments(tool, call(name="plot", arguments={"point": [1, 2]})) == {
        "point": [1, 2]
    }
    with pytest.raises(ToolArgumentsError, match=r"/point/1: 'y' is not of type 'number'"):
        validate_tool_arguments(tool, call(name="plot", arguments={"point": [1, "y"]}))
