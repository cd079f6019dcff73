"""EventStream, type guards, stop reasons, usage and boundary dumps.

See docs/events.md#run-structure, docs/events.md#agent-events and docs/architecture.md#types.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from support.agent_support import run

from tinyagent import AgentEndEvent, AssistantMessage, TextContent, ToolResultMessage, agent_types
from tinyagent.agent_loop import create_agent_stream
from tinyagent.agent_types import (
    STOP_REASONS,
    ZERO_USAGE,
    EventStream,
    MessageEndEvent,
    MessageStartEvent,
    MessageUpdateEvent,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    ToolExecutionUpdateEvent,
    TurnEndEvent,
    dump_model_dumpable,
    new_zero_usage,
)


def test_stream_made_outside_a_loop_works_in_two_loops_in_turn():
    first = create_agent_stream()
    second = create_agent_stream()  # both built before any loop exists

    async def produce_and_consume(stream):
        async def producer():
            await asyncio.sleep(0.01)
            stream.push(MessageStartEvent())
            stream.push(AgentEndEvent(messages=["m"]))

        task = asyncio.ensure_future(producer())
        types = [e.type async for e in stream]
        await task
        return types, await stream.result()

    assert run(produce_and_consume(first)) == (["message_start", "agent_end"], ["m"])
    assert run(produce_and_consume(second)) == (["message_start", "agent_end"], ["m"])


def test_push_after_end_is_ignored_and_result_defaults_to_empty_list():
    stream = EventStream(lambda e: e == "END", lambda e: "from-end")
    stream.push("a")
    stream.end()
    stream.push("late")

    async def consume():
        return [e async for e in stream], await stream.result()

    assert run(consume()) == (["a"], [])


def test_end_result_and_end_event_result():
    stream = EventStream(lambda e: e == "END", lambda e: "from-end")
    stream.push("x")
    stream.push("END")
    stream.push("ignored")
    assert run(stream.result()) == "from-end"
    explicit = EventStream(lambda e: False, lambda e: None)
    explicit.end(["r"])
    assert run(explicit.result()) == ["r"]


def test_set_exception_is_raised_after_queued_events():
    stream = EventStream(lambda e: False, lambda e: None)
    stream.push(1)
    stream.set_exception(KeyError("k"))
    stream.push(2)

    async def consume():
        got = []
        with pytest.raises(KeyError):
            async for e in stream:
                got.append(e)
        return got

    assert run(consume()) == [1]
    with pytest.raises(KeyError):
        run(stream.result())


def test_type_guards():
    cases = {
        "is_agent_end_event": AgentEndEvent(),
        "is_turn_end_event": TurnEndEvent(),
        "is_message_end_event": MessageEndEvent(),
        "is_tool_execution_start_event": ToolExecutionStartEvent(),
        "is_tool_execution_end_event": ToolExecutionEndEvent(),
    }
    for name, event in cases.items():
        guard = getattr(agent_types, name)
        assert (
            guard(event) is True
            and guard(TurnEndEvent() if name != "is_turn_end_event" else AgentEndEvent()) is False
        )
    assert agent_types.is_message_start_or_update_event(MessageUpdateEvent())
    assert not agent_types.is_message_start_or_update_event(MessageEndEvent())
    assert all(
        agent_types.is_message_event(e)
        for e in (MessageStartEvent(), MessageUpdateEvent(), MessageEndEvent())
    )
    assert all(
        agent_types.is_tool_execution_event(e)
        for e in (ToolExecutionStartEvent(), ToolExecutionUpdateEvent(), ToolExecutionEndEvent())
    )


def test_stop_reasons_are_closed_and_immutable():
    assert STOP_REASONS == {
        "complete",
        "error",
        "aborted",
        "tool_calls",
        "stop",
        "length",
        "tool_use",
    }
    with pytest.raises(AttributeError):
        STOP_REASONS.add("x")  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        AssistantMessage(stop_reason="finished")


def test_zero_usage_copies_are_fresh():
    usage = new_zero_usage()
    assert (
        usage == ZERO_USAGE and usage is not ZERO_USAGE and usage["cost"] is not ZERO_USAGE["cost"]
    )


def test_dump_model_dumpable_errors_and_terminate_excluded():
    with pytest.raises(
        TypeError, match=r"^ctx: expected model payload with model_dump\(exclude_none=True\)$"
    ):
        dump_model_dumpable({"role": "user"}, where="ctx")

    class Bad:
        def model_dump(self, *, exclude_none=True):
            return []

    with pytest.raises(
        TypeError, match=r"^ctx: model_dump\(exclude_none=True\) must return a dict$"
    ):
        dump_model_dumpable(Bad(), where="ctx")
    dumped = dump_model_dumpable(
        ToolResultMessage(terminate=True, content=[TextContent(text="x")]), where="m"
    )
    assert "terminate" not in dumped and dumped["role"] == "tool_result"


def test_assistant_content_resolves_by_type_and_rejects_images():
    message = AssistantMessage.model_validate(
        {
            "content": [
                {"type": "text", "text": "a"},
                None,
                {"type": "tool_call", "id": "1", "name": "f"},
            ]
        }
    )
    assert [type(b).__name__ if b else None for b in message.content] == [
        "TextContent",
        None,
        "ToolCallContent",
    ]
    with pytest.raises(ValidationError):
        AssistantMessage.model_validate({"content": [{"type": "image", "url": "https://x"}]})
    extra = TextContent(text="x", custom_field=1)
    assert extra.custom_field == 1  # extra keys are kept
