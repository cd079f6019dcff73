"""Helpers for the agent-core tests: a scripted agent, event recording, a bounded asyncio.run."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from tinyagent import Agent, AgentOptions, AgentTool, AgentToolResult, Model, TextContent
from tinyagent.testing.scripted import ScriptedReply, ScriptedStreamFn, ScriptedToolCall

LIVENESS_SECONDS = 3.0

#: The last events of a run ended by the loop itself (an error, an abort, the turn limit): one more
#: turn whose only message is the synthetic assistant message that says why.
CLOSING_TURN = ["turn_start", "message_start", "message_end", "turn_end", "agent_end"]

SUM_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
}


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run with a liveness bound: a hung run fails the test instead of the suite."""
    return asyncio.run(asyncio.wait_for(coro, LIVENESS_SECONDS))


def scripted_model() -> Model:
    return Model(provider="test", id="scripted-model", api="scripted")


async def sum_tool_execute(
    tool_call_id: str, args: dict, signal: Any, on_update: Any
) -> AgentToolResult:
    return AgentToolResult(content=[TextContent(text=str(args["a"] + args["b"]))])


def sum_tool(execute: Any = sum_tool_execute, name: str = "sum") -> AgentTool:
    return AgentTool(
        name=name, description="Add two numbers", parameters=SUM_SCHEMA, execute=execute
    )


def sum_calls(*pairs: tuple[int, int], name: str = "sum", **fields: Any) -> ScriptedReply:
    """A scripted reply that calls ``name`` once per ``(a, b)`` pair, in order."""
    calls = [ScriptedToolCall(name, {"a": a, "b": b}) for a, b in pairs]
    return ScriptedReply(tool_calls=calls, **fields)


def label(event: Any) -> str:
    """``message_update`` events as ``upd[<inner type>]``, everything else by its type."""
    if event.type == "message_update":
        inner = event.assistant_message_event
        return f"upd[{inner.type if inner is not None else None}]"
    return event.type


def squeeze(labels: list[str]) -> list[str]:
    """Collapse each run of one ``upd[*_delta]`` label into ``upd[*_delta]+`` (the number of
    deltas depends on chunking; every other event is kept one by one)."""
    out: list[str] = []
    for item in labels:
        if item.startswith("upd[") and item.endswith("_delta]"):
            if out and out[-1] == item + "+":
                continue
            out.append(item + "+")
        else:
            out.append(item)
    return out


class Recorder:
    """A listener that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    @property
    def labels(self) -> list[str]:
        return squeeze([label(e) for e in self.events])

    def of_type(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]


def scripted_agent(
    script: Any, tools: list[AgentTool] | None = None, **options: Any
) -> tuple[Agent, ScriptedStreamFn, Recorder]:
    stream_fn = script if isinstance(script, ScriptedStreamFn) else ScriptedStreamFn(script)
    agent = Agent(AgentOptions(stream_fn=stream_fn, **options))
    agent.set_model(scripted_model())
    if tools:
        agent.set_tools(tools)
    recorder = Recorder()
    agent.subscribe(recorder)
    return agent, stream_fn, recorder


__all__ = [
    "CLOSING_TURN",
    "Recorder",
    "ScriptedReply",
    "ScriptedStreamFn",
    "ScriptedToolCall",
    "run",
    "scripted_agent",
    "squeeze",
    "sum_calls",
    "sum_tool",
    "scripted_model",
]
