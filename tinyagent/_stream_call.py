"""One LLM call of the loop: ``stream_assistant_response`` (docs/events.md#llm-call).

Event tree of one call::

    message_start(A)                  # on the provider's ``start``, or synthesized before the
                                      # first update/retry that comes without one (#11)
      message_update(A, inner)*       # every text_*/thinking_*/tool_call_* and ``retry`` event
    message_end(A_final)              # always, on every path (#10)

``#n`` are rows of docs/architecture.md#differences.

``A_final`` is ``response.result()`` for ``done``/``error`` and for a stream that just stops; an
error message built from the partial when anything fails (step 7); an aborted message built from
the partial when the signal is set (docs/events.md#abort); or, with the signal already set on
entry, a synthetic aborted message made without calling ``stream_fn`` (step 0).

The per-delta path is the hot path of the whole package: one ``isinstance``, one set lookup, one
event dataclass and one ``push`` per delta; no copies, no validation, no asyncio objects.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

from ._provider_routing import reasoning_effort
from ._run_support import (
    AbortWatch,
    abort_outcome,
    absorb_external_cancel,
    aclose_quietly,
    is_aborted,
    maybe_await,
    meaningful_blocks,
    synthetic_message,
)
from .agent_types import (
    STREAM_UPDATE_EVENTS,
    AgentContext,
    AgentEvent,
    AgentLoopConfig,
    AssistantMessage,
    AssistantMessageEvent,
    Context,
    EventStream,
    MessageEndEvent,
    MessageStartEvent,
    MessageUpdateEvent,
    SimpleStreamOptions,
    StreamFn,
    ToolCallContent,
    new_zero_usage,
    now_ms,
)

_UPDATE_TYPES = STREAM_UPDATE_EVENTS | {"retry"}


async def stream_assistant_response(
    context: AgentContext,
    config: AgentLoopConfig,
    signal: asyncio.Event | None,
    stream: EventStream[Any, Any],
    stream_fn: StreamFn | None = None,
) -> AssistantMessage:
    """Make one LLM call, push its message events onto ``stream``, return the final message."""
    return await assistant_reply(context, config, signal, stream.push, stream_fn)


async def assistant_reply(
    context: AgentContext,
    config: AgentLoopConfig,
    signal: asyncio.Event | None,
    emit: Callable[[AgentEvent], None],
    stream_fn: StreamFn | None = None,
) -> AssistantMessage:
    """Make one LLM call, ``emit`` its message events, and return the final assistant message.

    Never raises for provider failures: they come back as an ``error`` message (step 7).
    """
    call = _Call(context, config, emit)
    if is_aborted(signal):  # step 0: no request once aborted
        return call.close_aborted(signal)
    watch = AbortWatch(signal)
    response: Any = None
    try:
        response = await _open_response(call, context, config, signal, stream_fn)  # steps 1-4
        final = await call.consume(response, signal)  # steps 5-6
    except asyncio.CancelledError:
        if not (watch.stop() or absorb_external_cancel(signal)):
            call.close_aborted(signal)
            await aclose_quietly(response)
            raise
        final = None
    except Exception as exc:  # step 7
        watch.stop()
        await aclose_quietly(response)
        return call.close_failed(exc)
    except BaseException:  # KeyboardInterrupt, SystemExit: leave no watcher behind
        watch.stop()
        raise
    else:
        watch.stop()
    if final is None:  # aborted while streaming: stop reading, close the HTTP stream
        message = call.close_aborted(signal)
        await aclose_quietly(response)
        return message
    return final


async def _open_response(
    call: _Call,
    context: AgentContext,
    config: AgentLoopConfig,
    signal: asyncio.Event | None,
    stream_fn: StreamFn | None,
) -> Any:
    messages = context.messages
    if config.transform_context is not None:  # step 1
        messages = await maybe_await(config.transform_context(messages, signal))
    llm_messages = await maybe_await(config.convert_to_llm(messages))
    llm_context = Context(
        system_prompt=context.system_prompt, messages=llm_messages, tools=context.tools
    )
    api_key = None  # step 2
    if config.get_api_key is not None:
        api_key = await maybe_await(config.get_api_key(config.model.provider))
    call.secret = api_key or config.api_key
    options = SimpleStreamOptions(  # step 3
        api_key=api_key or config.api_key,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        signal=signal,
        session_id=config.session_id,
        # a ThinkingLevel maps to one of the efforts; anything else fails validation here
        reasoning=reasoning_effort(config.thinking_level),  # type: ignore[arg-type]
    )
    if stream_fn is None:
        from .agent_loop import stream_simple

        stream_fn = stream_simple
    return await stream_fn(config.model, llm_context, options)  # step 4



class _Call:
    """The message of one call: started or not, its live partial, and how it gets closed."""

    __slots__ = ("messages", "config", "emit", "partial", "secret")

    def __init__(
        self, context: AgentContext, config: AgentLoopConfig, emit: Callable[[AgentEvent], None]
    ) -> None:
        self.messages = context.messages
        self.config = config
        self.emit = emit
        self.partial: AssistantMessage | None = None  # not None once message_start was pushed
        self.secret: str | None = config.api_key  # scrubbed from error texts

    def begin(self, partial: AssistantMessage) -> None:
        self.partial = partial
        self.messages.append(partial)
        self.emit(MessageStartEvent(message=partial))

    def empty_partial(self) -> AssistantMessage:
        model = self.config.model
        return AssistantMessage(
            api=model.api, provider=model.provider, model=model.id, timestamp=now_ms()
        )

    async def consume(self, response: Any, signal: asyncio.Event | None) -> AssistantMessage | None:
        """Steps 5-6. Returns the final message, or ``None`` when the signal stopped the reading."""
        push = self.emit
        messages = self.messages
        update_types = _UPDATE_TYPES
        async for event in response:
            if not isinstance(event, AssistantMessageEvent):
                raise TypeError(f"Unsupported assistant event payload: {type(event).__name__}")
            kind = event.type
            if kind in update_types:
                partial = event.partial
                if self.partial is None:  # an update before `start`: synthesize message_start
                    self.begin(partial if partial is not None else self.empty_partial())
                elif partial is not None and partial is not self.partial:
                    self.partial = partial
                    messages[-1] = partial
                push(MessageUpdateEvent("message_update", self.partial, event))
                if signal is not None and signal.is_set():
                    return None
            elif kind == "start":
                partial = event.partial if event.partial is not None else self.empty_partial()
                if self.partial is None:
                    self.begin(partial)
                else:  # a `retry` came first and already opened the message
                    self.partial = partial
                    messages[-1] = partial
                if signal is not None and signal.is_set():
                    return None
            elif kind == "done" or kind == "error":
                fallback = event.message if kind == "done" else event.error
                return self.finish(await _final_result(response, fallback))
        return self.finish(await _final_result(response, None))

    def finish(self, final: AssistantMessage) -> AssistantMessage:
        if final.stop_reason == "length":
            final = _refuse_cut_tool_call(final)
        if self.partial is None:
            self.messages.append(final)
            self.emit(MessageStartEvent(message=final))
        else:
            self.messages[-1] = final
        self.partial = final
        self.emit(MessageEndEvent(message=final))
        return final

    def close_failed(self, exc: BaseException) -> AssistantMessage:
        text = str(exc) or type(exc).__name__
        key = self.secret
        if key and key in text:  # secrets never leak into messages
            text = text.replace(key, "***")
        message = synthetic_message(self.config, "error", text, meaningful_blocks(self.partial))
        return self.finish(message)

    def close_aborted(self, signal: asyncio.Event | None) -> AssistantMessage:
        stop_reason, text = abort_outcome(signal)
        usage = self.partial.usage if self.partial is not None else None
        usage = copy.deepcopy(usage) if isinstance(usage, dict) else new_zero_usage()
        message = synthetic_message(
            self.config, stop_reason, text, meaningful_blocks(self.partial), usage
        )
        return self.finish(message)


async def _final_result(response: Any, fallback: Any) -> AssistantMessage:
    try:
        final = await response.result()
    except Exception:
        if isinstance(fallback, AssistantMessage):
            return fallback
        raise
    if not isinstance(final, AssistantMessage):
        raise TypeError(f"Unsupported assistant message payload: {type(final).__name__}")
    return final


def _refuse_cut_tool_call(final: AssistantMessage) -> AssistantMessage:
    """A reply cut off at the output cap inside tool arguments must not run the tool
    (docs/events.md#llm-call)."""
    for block in final.content:
        if isinstance(block, ToolCallContent) and block.partial_json is not None:
            text = (
                "reply cut off at the output cap (finish_reason=length) inside the arguments of "
                f"tool '{block.name}'; the tool was not run. Raise max_tokens."
            )
            return final.model_copy(update={"stop_reason": "error", "error_message": text})
    return final
