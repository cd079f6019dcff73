"""Tools as people write them: a plain ``def`` runs in a worker thread, a non-function is refused
when the tool is built, and a tool that raises or returns the wrong thing is reported to its
author (log + ``ToolExecutionEndEvent.exception``) while the model still gets an error result."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from support.agent_support import (
    run,
    scripted_agent,
    sum_calls,
    sum_tool,
)

from tinyagent import AgentTool, AgentToolResult, TextContent


def _tool_results(agent):
    return [m for m in agent.state.messages if m.role == "tool_result"]


def _text(message):
    return "".join(b.text for b in message.content)


def _call_sum_then(text="done"):
    return [sum_calls((2, 40)), text]


def test_a_plain_def_tool_runs_in_a_worker_thread_and_its_result_reaches_the_model():
    threads = []

    def add(tool_call_id, args, signal, on_update):
        threads.append(threading.current_thread())
        return AgentToolResult(content=[TextContent(text=str(args["a"] + args["b"]))])

    agent, stream_fn, _ = scripted_agent(_call_sum_then(), tools=[sum_tool(add)])
    run(agent.prompt("add"))

    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    (result,) = _tool_results(agent)
    assert not result.is_error and _text(result) == "42"
    # the second model call saw the tool's answer
    assert _text(stream_fn.contexts[1].messages[-1]) == "42"


def test_a_slow_plain_def_tool_leaves_the_event_loop_free():
    ticks = []

    def slow(tool_call_id, args, signal, on_update):
        time.sleep(0.3)
        return AgentToolResult(content=[TextContent(text="slept")])

    async def main(agent):
        async def ticker():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.02)

        task = asyncio.get_running_loop().create_task(ticker())
        try:
            await agent.prompt("go")
        finally:
            task.cancel()

    agent, _, _ = scripted_agent(_call_sum_then(), tools=[sum_tool(slow)])
    run(main(agent))
    # a blocking call on the loop would have stopped the ticker for the whole 0.3 s
    assert len(ticks) >= 5
    assert _text(_tool_results(agent)[0]) == "slept"


def test_the_wrapped_plain_def_is_still_reachable_and_awaitable():
    def add(tool_call_id, args, signal, on_update):
        return AgentToolResult(content=[TextContent(text="ok")])

    tool = sum_tool(add)
    assert tool.execute.__wrapped__ is add
    result = run(tool.execute("c1", {"a": 1, "b": 2}, None, lambda _: None))
    assert _text(result) == "ok"


def test_async_execute_is_kept_as_given():
    async def add(tool_call_id, args, signal, on_update):
        return AgentToolResult()

    assert sum_tool(add).execute is add


@pytest.mark.parametrize("value", ["sum", 42, object()])
def test_an_execute_that_is_not_a_function_is_a_type_error_naming_the_tool(value):
    with pytest.raises(TypeError, match=r"AgentTool 'adder': execute must be a function"):
        AgentTool(name="adder", execute=value)
    tool = AgentTool(name="adder")
    with pytest.raises(TypeError, match="adder"):
        tool.execute = value


def test_a_tool_that_raises_is_logged_with_its_traceback_and_carried_on_the_event(caplog):
    def broken(tool_call_id, args, signal, on_update):
        raise LookupError("no such row")

    agent, _, recorder = scripted_agent(_call_sum_then(), tools=[sum_tool(broken)])
    with caplog.at_level(logging.WARNING, logger="tinyagent.tools"):
        run(agent.prompt("go"))

    (result,) = _tool_results(agent)
    assert result.is_error and _text(result) == "no such row"  # what the model reads
    (end,) = recorder.of_type("tool_execution_end")
    assert isinstance(end.exception, LookupError) and end.exception.__traceback__ is not None
    (record,) = [r for r in caplog.records if r.name == "tinyagent.tools"]
    assert record.levelno == logging.WARNING
    assert "'sum'" in record.getMessage() and "LookupError" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is end.exception


@pytest.mark.parametrize(
    ("returned", "type_name"), [("42", "str"), ({"content": []}, "dict"), (None, "NoneType")]
)
def test_a_wrong_return_type_names_the_tool_and_the_type_and_is_logged(caplog, returned, type_name):
    async def wrong(tool_call_id, args, signal, on_update):
        return returned

    agent, _, recorder = scripted_agent(_call_sum_then(), tools=[sum_tool(wrong)])
    with caplog.at_level(logging.WARNING, logger="tinyagent.tools"):
        run(agent.prompt("go"))

    expected = f"Tool sum returned {type_name}; expected AgentToolResult"
    (result,) = _tool_results(agent)
    assert result.is_error and _text(result) == expected
    (end,) = recorder.of_type("tool_execution_end")
    assert isinstance(end.exception, TypeError) and str(end.exception) == expected
    assert [r.getMessage() for r in caplog.records if r.name == "tinyagent.tools"] == [expected]


def test_invalid_content_is_logged_too(caplog):
    async def bad_content(tool_call_id, args, signal, on_update):
        return AgentToolResult(content=["just a string"])

    agent, _, recorder = scripted_agent(_call_sum_then(), tools=[sum_tool(bad_content)])
    with caplog.at_level(logging.WARNING, logger="tinyagent.tools"):
        run(agent.prompt("go"))

    (result,) = _tool_results(agent)
    assert result.is_error and _text(result).startswith("Tool sum returned invalid content")
    (end,) = recorder.of_type("tool_execution_end")
    assert end.exception is not None
    assert any("invalid content" in r.getMessage() for r in caplog.records)


def test_a_successful_call_carries_no_exception():
    agent, _, recorder = scripted_agent(_call_sum_then(), tools=[sum_tool()])
    run(agent.prompt("go"))
    (end,) = recorder.of_type("tool_execution_end")
    assert end.exception is None and not end.is_error


def test_a_tool_error_is_an_error_result_without_a_warning(caplog):
    from tinyagent import ToolError

    def lookup(tool_call_id, args, signal, on_update):
        raise ToolError("no row 7; rows are 0-5")

    agent, _, recorder = scripted_agent(_call_sum_then(), tools=[sum_tool(lookup)])
    with caplog.at_level(logging.DEBUG, logger="tinyagent.tools"):
        run(agent.prompt("go"))
    (result,) = _tool_results(agent)
    assert result.is_error and _text(result) == "no row 7; rows are 0-5"
    (end,) = recorder.of_type("tool_execution_end")
    assert isinstance(end.exception, ToolError)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
