"""A scripted ``stream_fn`` for testing agents without a model or a server.

``ScriptedStreamFn`` plays one scripted reply per LLM call and emits the same
``AssistantMessageEvent`` sequence a built-in provider does (``start``, ``thinking_*``,
``text_*``, ``tool_call_*``, then ``done`` or ``error``), on one partial updated in place. It
records every call's model, context and options, and honours ``options.signal`` and ``aclose()``::

    from tinyagent import Agent, AgentOptions, Model
    from tinyagent.testing.scripted import ScriptedReply, ScriptedStreamFn, ScriptedToolCall

    model_fn = ScriptedStreamFn([
        ScriptedReply(tool_calls=[ScriptedToolCall("sum", {"a": 1, "b": 2})]),
        "The sum is 3.",                      # a str is a plain text reply
    ])
    agent = Agent(AgentOptions(stream_fn=model_fn))
    agent.set_model(Model(provider="test", id="scripted", api="scripted"))
    assert await agent.prompt_text("add 1 and 2") == "The sum is 3."
    assert model_fn.calls[1].context.messages[-1].role == "tool_result"

A script item may also be a function ``(context) -> ScriptedReply | str``, and the whole script may
be one such function, called for every request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ..agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    Context,
    Model,
    SimpleStreamOptions,
    TextContent,
    ThinkingContent,
    ToolCallContent,
    new_zero_usage,
    now_ms,
)

__all__ = ["ScriptedCall", "ScriptedReply", "ScriptedStreamFn", "ScriptedToolCall"]


@dataclass
class ScriptedToolCall:
    """A tool call of a scripted reply. A ``str`` ``arguments`` is sent verbatim (it may be
    invalid JSON, to test validation); a dict is sent as its JSON text."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass
class ScriptedReply:
    """One scripted LLM reply.

    ``error`` ends the stream with an ``error`` event (after the content) carrying that message;
    ``raise_error`` makes the iterator raise it instead. ``hang`` keeps the stream open after the
    content until the request is aborted or closed. ``retries`` are ``(reason, delay)`` pairs
    sent as ``retry`` events before ``start``. ``send_start=False`` omits the ``start`` event and
    ``send_terminal=False`` ends the stream without ``done``/``error``.
    """

    text: str | None = None
    thinking: str | None = None
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    stop_reason: str | None = None  # default: "tool_calls" with tool calls, else "stop"
    error: str | None = None
    raise_error: BaseException | None = None
    hang: bool = False
    retries: list[tuple[str, float]] = field(default_factory=list)
    send_start: bool = True
    send_terminal: bool = True
    chunk_size: int = 4
    delay: float = 0.0  # seconds before each content event
    usage: dict[str, Any] | None = None


ScriptItem: TypeAlias = "str | ScriptedReply | Callable[[Context], str | ScriptedReply]"


@dataclass
class ScriptedCall:
    """What one call of the stream function received."""

    model: Model
    context: Context
    options: SimpleStreamOptions


class ScriptedStreamFn:
    """A ``StreamFn`` that answers each call with the next scripted reply."""

    def __init__(
        self,
        script: Iterable[ScriptItem] | Callable[[Context], str | ScriptedReply],
        *,
        api: str | None = None,
    ) -> None:
        self._respond: Callable[[Context], str | ScriptedReply] | None = None
        self._script: list[ScriptItem] = []
        if callable(script):
            self._respond = script
        else:
            self._script = list(script)
        self._api = api
        self.calls: list[ScriptedCall] = []
        self.responses: list[ScriptedResponse] = []

    @property
    def contexts(self) -> list[Context]:
        return [c.context for c in self.calls]

    @property
    def remaining(self) -> int:
        return len(self._script)

    async def __call__(
        self, model: Model, context: Context, options: SimpleStreamOptions
    ) -> ScriptedResponse:
        self.calls.append(ScriptedCall(model, context, options))
        if self._respond is not None:
            item: ScriptItem = self._respond
        elif self._script:
            item = self._script.pop(0)
        else:
            raise RuntimeError(f"scripted stream_fn: no reply left for call {len(self.calls)}")
        if callable(item):
            item = item(context)
        reply = ScriptedReply(text=item) if isinstance(item, str) else item
        response = ScriptedResponse(reply, model, options.signal, api=self._api)
        self.responses.append(response)
        return response


class ScriptedResponse:
    """The ``StreamResponse`` of one scripted reply."""

    def __init__(
        self,
        reply: ScriptedReply,
        model: Model,
        signal: asyncio.Event | None,
        *,
        api: str | None = None,
    ) -> None:
        self.reply = reply
        self.signal = signal
        self.closed = False
        self.partial = AssistantMessage(
            content=[],
            stop_reason="stop",
            api=api or model.api,
            provider=model.provider,
            model=model.id,
            usage=None,
            timestamp=now_ms(),
        )
        self._final: AssistantMessage | None = None
        self._events = self._generate()

    def __aiter__(self) -> ScriptedResponse:
        return self

    async def __anext__(self) -> AssistantMessageEvent:
        if self.closed:
            raise StopAsyncIteration
        return await self._events.__anext__()

    async def result(self) -> AssistantMessage:
        if self._final is None:
            async for _ in self:
                pass
        if self._final is None:
            raise RuntimeError("scripted stream ended without a final message")
        return self._final

    async def aclose(self) -> None:
        self.closed = True
        await self._events.aclose()

    def _aborted(self) -> bool:
        return self.signal is not None and self.signal.is_set()

    async def _pause(self) -> None:
        if self.reply.delay > 0:
            await asyncio.sleep(self.reply.delay)

    async def _generate(self) -> Any:
        reply, partial = self.reply, self.partial
        ev = AssistantMessageEvent
        for attempt, (reason, delay) in enumerate(reply.retries, start=1):
            yield ev(type="retry", reason=reason, attempt=attempt, delay=delay, partial=partial)
        if reply.send_start:
            yield ev(type="start", partial=partial)
        for block, text in (
            (ThinkingContent(thinking=""), reply.thinking),
            (TextContent(text=""), reply.text),
        ):
            if text is None:
                continue
            kind = "thinking" if isinstance(block, ThinkingContent) else "text"
            index = len(partial.content)
            partial.content.append(block)
            yield ev(type=f"{kind}_start", content_index=index, partial=partial)  # type: ignore[arg-type]
            for chunk in _chunks(text, reply.chunk_size):
                await self._pause()
                if self._aborted():
                    yield self._abort_event()
                    return
                setattr(block, kind, getattr(block, kind) + chunk)
                yield ev(type=f"{kind}_delta", content_index=index, delta=chunk, partial=partial)  # type: ignore[arg-type]
            yield ev(type=f"{kind}_end", content_index=index, content=text, partial=partial)  # type: ignore[arg-type]
        calls: list[tuple[int, ToolCallContent, str]] = []
        for n, spec in enumerate(reply.tool_calls):
            raw = spec.arguments if isinstance(spec.arguments, str) else json.dumps(spec.arguments)
            call = ToolCallContent(id=spec.id or f"call_{n + 1}", name=spec.name, partial_json="")
            index = len(partial.content)
            partial.content.append(call)
            calls.append((index, call, raw))
            start = ToolCallContent(id=call.id, name=call.name)
            yield ev(type="tool_call_start", content_index=index, tool_call=start, partial=partial)
            for chunk in _chunks(raw, reply.chunk_size):
                await self._pause()
                if self._aborted():
                    yield self._abort_event()
                    return
                call.partial_json = (call.partial_json or "") + chunk
                yield ev(type="tool_call_delta", content_index=index, delta=chunk, partial=partial)
        for index, call, raw in calls:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                call.arguments, call.partial_json = parsed, None
            else:  # unparseable: arguments {}, raw text kept (docs/architecture.md#types)
                call.arguments, call.partial_json = {}, raw
            yield ev(type="tool_call_end", content_index=index, tool_call=call, partial=partial)
        if reply.hang:
            await self._wait_for_abort()
            yield self._abort_event()
            return
        if reply.raise_error is not None:
            raise reply.raise_error
        if not reply.send_terminal:
            self._final = self._finish(self._default_stop_reason())
            return
        if reply.error is not None:
            final = self._finish("error", reply.error)
            yield ev(type="error", reason="error", error=final)
            return
        final = self._finish(self._default_stop_reason())
        yield ev(type="done", reason=final.stop_reason, message=final)

    def _default_stop_reason(self) -> str:
        if self.reply.stop_reason is not None:
            return self.reply.stop_reason
        return "tool_calls" if self.reply.tool_calls else "stop"

    def _finish(self, stop_reason: str, error_message: str | None = None) -> AssistantMessage:
        usage = dict(self.reply.usage) if self.reply.usage is not None else new_zero_usage()
        final = self.partial.model_copy(
            update={
                "content": list(self.partial.content),
                "stop_reason": stop_reason,
                "error_message": error_message,
                "usage": usage,
            }
        )
        self._final = final
        return final

    def _abort_event(self) -> AssistantMessageEvent:
        final = self._finish("aborted", "Request was aborted")
        return AssistantMessageEvent(type="error", reason="aborted", error=final)

    async def _wait_for_abort(self) -> None:
        if self.signal is None:
            await asyncio.Event().wait()  # only cancellation or aclose() ends it
        else:
            await self.signal.wait()


def _chunks(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or []
