"""Recorded event sequences and a scripted ``stream_fn`` for the notebook tests.

``scripted_stream_fn`` plays replies through the real Agent loop, emitting the provider events a
built-in provider emits (docs/architecture.md#partial): one live partial per stream, updated in
place. ``recorded_run`` builds an agent-event sequence directly (for feeding renderers without a
loop). ``tests/test_notebook_fakes.py`` pins the shapes the other notebook tests rely on.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from tinyagent.agent_types import (
    AgentEndEvent,
    AgentStartEvent,
    AgentToolResult,
    AssistantMessage,
    AssistantMessageEvent,
    MessageEndEvent,
    MessageStartEvent,
    MessageUpdateEvent,
    TextContent,
    ThinkingContent,
    ToolCallContent,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    TurnEndEvent,
    TurnStartEvent,
    UserMessage,
    new_zero_usage,
)


@dataclass
class Step:
    """One scripted assistant reply."""

    text: str = ""
    thinking: str = ""
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(
        default_factory=list
    )  # (id, name, args)
    chunk: int = 5
    delay: float = 0.0  # seconds between deltas
    usage: dict[str, Any] | None = None
    error: str | None = None  # end with an error event after the text


def provider_events(step: Step, model_id: str = "fake") -> list[AssistantMessageEvent]:
    """The provider events of one reply, sharing a single in-place partial."""
    partial = AssistantMessage(
        content=[], api="fake", provider="fake", model=model_id, usage=new_zero_usage()
    )
    events = [AssistantMessageEvent(type="start", partial=partial)]
    if step.thinking:
        ci = len(partial.content)
        block = ThinkingContent(thinking="")
        partial.content.append(block)
        events.append(
            AssistantMessageEvent(type="thinking_start", content_index=ci, partial=partial)
        )
        for i in range(0, len(step.thinking), step.chunk):
            piece = step.thinking[i : i + step.chunk]
            events.append(
                AssistantMessageEvent(
                    type="thinking_delta", content_index=ci, delta=piece, partial=partial
                )
            )
        events.append(
            AssistantMessageEvent(
                type="thinking_end", content_index=ci, content=step.thinking, partial=partial
            )
        )
    if step.text:
        ci = len(partial.content)
        partial.content.append(TextContent(text=""))
        events.append(AssistantMessageEvent(type="text_start", content_index=ci, partial=partial))
        for i in range(0, len(step.text), step.chunk):
            events.append(
                AssistantMessageEvent(
                    type="text_delta",
                    content_index=ci,
                    delta=step.text[i : i + step.chunk],
                    partial=partial,
                )
            )
        events.append(
            AssistantMessageEvent(
                type="text_end", content_index=ci, content=step.text, partial=partial
            )
        )
    for call_id, name, args in step.tool_calls:
        ci = len(partial.content)
        partial.content.append(ToolCallContent(id=call_id, name=name, arguments={}))
        raw = json.dumps(args)
        events.append(
            AssistantMessageEvent(
                type="tool_call_start",
                content_index=ci,
                tool_call=ToolCallContent(id=call_id, name=name),
                partial=partial,
            )
        )
        for i in range(0, len(raw), 4):
            events.append(
                AssistantMessageEvent(
                    type="tool_call_delta", content_index=ci, delta=raw[i : i + 4], partial=partial
                )
            )
    for ci, block in enumerate(partial.content):
        if isinstance(block, ToolCallContent):
            args = next(a for c, _n, a in step.tool_calls if c == block.id)
            events.append(
                AssistantMessageEvent(
                    type="tool_call_end",
                    content_index=ci,
                    tool_call=ToolCallContent(id=block.id, name=block.name, arguments=args),
                    partial=partial,
                )
            )
    final = AssistantMessage(
        content=_final_content(step),
        stop_reason="error" if step.error else ("tool_calls" if step.tool_calls else "stop"),
        error_message=step.error,
        api="fake",
        provider="fake",
        model=model_id,
        usage=step.usage
        or {
            **new_zero_usage(),
            "input": 10,
            "output": max(1, len(step.text) // 4),
            "total_tokens": 10 + len(step.text) // 4,
        },
        timestamp=1,
    )
    if step.error:
        events.append(AssistantMessageEvent(type="error", reason="error", error=final))
    else:
        events.append(AssistantMessageEvent(type="done", reason=final.stop_reason, message=final))
    return events


def _final_content(step: Step) -> list[Any]:
    content: list[Any] = []
    if step.thinking:
        content.append(ThinkingContent(thinking=step.thinking))
    if step.text:
        content.append(TextContent(text=step.text))
    for call_id, name, args in step.tool_calls:
        content.append(ToolCallContent(id=call_id, name=name, arguments=args))
    return content


class _Response:
    def __init__(self, step: Step, signal: asyncio.Event | None) -> None:
        self.events = provider_events(step)
        self.step = step
        self.closed = False
        self._final = next(e.message or e.error for e in self.events if e.type in ("done", "error"))

    def __aiter__(self) -> _Response:
        return self

    async def __anext__(self) -> AssistantMessageEvent:
        if self.closed or not self.events:
            raise StopAsyncIteration
        if self.step.delay:
            await asyncio.sleep(self.step.delay)
        return self.events.pop(0)

    async def result(self) -> AssistantMessage:
        return self._final  # type: ignore[return-value]

    async def aclose(self) -> None:
        self.closed = True


class ScriptedStream:
    """A ``stream_fn`` playing ``steps`` in order; records the contexts it was called with."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = list(steps)
        self.calls: list[Any] = []
        self.responses: list[_Response] = []

    async def __call__(self, model: Any, context: Any, options: Any) -> _Response:
        self.calls.append(context)
        if not self.steps:
            raise RuntimeError("script exhausted")
        response = _Response(self.steps.pop(0), options.signal)
        self.responses.append(response)
        return response


def scripted_agent(steps: list[Step]) -> tuple[Any, ScriptedStream]:
    from tinyagent.agent import Agent, AgentOptions
    from tinyagent.agent_types import Model

    stream = ScriptedStream(steps)
    agent = Agent(AgentOptions(stream_fn=stream))
    agent.set_model(Model(provider="fake", id="fake", api="fake"))
    return agent, stream


def recorded_run(
    step: Step, *, prompt: str = "hi", tool_results: dict[str, tuple[str, bool]] | None = None
) -> list[Any]:
    """Agent events of one turn (plus tool execution events), as the loop emits them
    (docs/events.md#orders)."""
    user = UserMessage(content=[TextContent(text=prompt)])
    events: list[Any] = [
        AgentStartEvent(),
        TurnStartEvent(),
        MessageStartEvent(message=user),
        MessageEndEvent(message=user),
    ]
    provider = provider_events(step)
    partial = provider[0].partial
    events.append(MessageStartEvent(message=partial))
    for event in provider[1:-1]:
        events.append(MessageUpdateEvent(message=partial, assistant_message_event=event))
    final = provider[-1].message or provider[-1].error
    events.append(MessageEndEvent(message=final))
    results = []
    for call_id, name, args in step.tool_calls:
        events.append(ToolExecutionStartEvent(tool_call_id=call_id, tool_name=name, args=args))
    for call_id, name, args in step.tool_calls:
        text, is_error = (tool_results or {}).get(call_id, ("ok", False))
        result = AgentToolResult(content=[TextContent(text=text)])
        events.append(
            ToolExecutionEndEvent(
                tool_call_id=call_id, tool_name=name, result=result, is_error=is_error, args=args
            )
        )
        results.append(result)
    events.append(TurnEndEvent(message=final, tool_results=[]))
    events.append(AgentEndEvent(messages=[user, final]))
    return events
