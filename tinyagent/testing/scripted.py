"""A scripted ``stream_fn`` for testing agents without a model or a server.

``ScriptedStreamFn`` plays one scripted reply per LLM call and emits the same
``AssistantMessageEvent`` sequence a built-in provider does (``start``, ``thinking_*``,
``text_*``, ``tool_call_*``, then ``done`` or ``error``), on one partial updated in place by the
same builder the built-in provider feeds (``tinyagent._partial.PartialBuilder``), so the partial
(text, best-effort tool ``arguments`` mid-stream, final calls) is the real path's. It records
every call's model, context and options, and honours ``options.signal`` and ``aclose()``::

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

from .._constants import ABORTED_TEXT
from .._partial import PartialBuilder, final_tool_call
from ..agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    Context,
    Model,
    SimpleStreamOptions,
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
        self._builder = PartialBuilder(self.partial)
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
        # Every event is one tuple of the core's batch shape (docs/design.md#tuples) fed to the
        # shared builder, which updates the partial exactly as for a real stream.
        reply, feed = self.reply, self._builder.feed
        for attempt, (reason, delay) in enumerate(reply.retries, start=1):
            yield feed("retry", None, reason, (attempt, delay))
        if reply.send_start:
            yield feed("start")
        for kind, text in (("thinking", reply.thinking), ("text", reply.text)):
            if text is None:
                continue
            index = len(self.partial.content)
            yield feed(f"{kind}_start", index)
            for chunk in _chunks(text, reply.chunk_size):
                await self._pause()
                if self._aborted():
                    yield self._abort_event()
                    return
                yield feed(f"{kind}_delta", index, chunk)
            yield feed(f"{kind}_end", index, text)
        calls: list[tuple[int, str, str, str]] = []
        for n, spec in enumerate(reply.tool_calls):
            raw = spec.arguments if isinstance(spec.arguments, str) else json.dumps(spec.arguments)
            call_id = spec.id or f"call_{n + 1}"
            index = len(self.partial.content)
            calls.append((index, call_id, spec.name, raw))
            yield feed("tool_call_start", index, call_id, spec.name)
            for chunk in _chunks(raw, reply.chunk_size):
                await self._pause()
                if self._aborted():
                    yield self._abort_event()
                    return
                yield feed("tool_call_delta", index, chunk)
        for index, call_id, name, raw in calls:
            yield feed("tool_call_end", index, final_tool_call(call_id, name, raw))
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
            yield feed("error", None, "error", self._finish("error", reply.error))
            return
        final = self._finish(self._default_stop_reason())
        yield feed("done", None, final.stop_reason, final)

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
        return self._builder.feed("error", None, "aborted", self._finish("aborted", ABORTED_TEXT))

    async def _wait_for_abort(self) -> None:
        if self.signal is None:
            await asyncio.Event().wait()  # only cancellation or aclose() ends it
        else:
            await self.signal.wait()


def _chunks(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or []
