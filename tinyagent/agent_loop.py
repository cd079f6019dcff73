"""The agent loop: prompts in, events out (docs/events.md#run-structure).

Read it top to bottom: ``agent_loop`` / ``agent_loop_continue`` open the run, ``run_loop`` plays
the turns, ``stream_assistant_response`` makes one LLM call, and ``execute_tool_calls`` (in
``agent_tool_execution``) runs the tools a reply asked for. Inside, every function takes an
``emit`` callback and never sees a stream object: ``agent_loop`` passes its ``EventStream``'s
``push``, the Agent its dispatcher (state, then listeners, synchronously).

Event tree of a run (``U`` prompt, ``A`` assistant, ``R`` tool result, ``upd`` message_update)::

    agent_start
    turn_start                                   # turn 1 (agent_loop pushes it with the prompts)
      message_start(U) message_end(U)            # each prompt, then steering queued before the run
      message_start(A) upd* message_end(A)       # stream_assistant_response
      tool_execution_start(a) ... (b)            # execute_tool_calls: all starts first
      tool_execution_update*                     # live
      tool_execution_end(a) message_start(Ra) message_end(Ra)   # after all settled, call order
    turn_end(A, [Ra, ...])
    turn_start ...                               # more turns while tools ran or input is pending
    agent_end(new_messages)                      # exactly once, always last

Terminal turns: an ``error``/``aborted`` assistant message ends the run right after its ``turn_end``
(docs/events.md#orders: provider error, abort, cut-off tool arguments, listener failure); a
turn-limit message does the same without a request (docs/events.md#turn-limit-reached). A run closed
from outside an LLM stream (abort during tools or polls, a failing poll or
``should_stop_after_turn``) ends with one more turn holding a synthetic message made without
contacting the model: ``turn_start message_start(A) message_end(A) turn_end(A, [])``.

Per scenario (tested one by one in ``tests/test_loop_event_orders.py``)::

    plain reply        ... message_start(A) upd[text_*]* message_end(A stop) turn_end agent_end
    tools, then text   ... message_end(A1 tool_calls) tool starts, ends+results, turn_end(A1, R)
                       turn_start message_start(A2) ... message_end(A2) turn_end agent_end
    provider error     ... message_start(A) upd* message_end(A' error, partial kept) turn_end agent_end
    abort, streaming   ... upd* <abort> message_end(A' aborted) turn_end agent_end
    abort, tools       ... tool ends ("Tool execution aborted" for unfinished) turn_end(A1, R)
                       turn_start message_start(A2 aborted) message_end(A2) turn_end agent_end
    turn limit         ... turn_end(An, R) turn_start message_start(L) message_end(L error) turn_end agent_end
    cut-off tool args  ... upd[tool_call_*]* message_end(A' error) turn_end agent_end   (no tool events)
    listener raised    ... upd <raise> message_end(A' error "listener f failed: ...") turn_end agent_end
    retry first        ... message_start(A) upd[retry] upd[text_start] ...  (one message_start)
    steering (early)   turn 1: message_start/end(U) message_start/end(S) message_start(A) ...
    steering (tools)   ... turn_end(A1, R) turn_start message_start/end(S) message_start(A2) ...
    follow-ups         ... turn_end(A) turn_start message_start/end(F) message_start(A2) ...
    continue_          agent_start turn_start message_start(A) ...   (no user events)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ._run_support import (
    AbortWatch,
    RunSignal,
    abort_outcome,
    absorb_external_cancel,
    is_aborted,
    keep_alive,
    mark_run_task,
    maybe_await,
    synthetic_message,
)
from ._stream_call import assistant_reply, stream_assistant_response
from .agent_tool_execution import run_tool_calls
from .agent_types import (
    AgentContext,
    AgentEndEvent,
    AgentEvent,
    AgentLoopConfig,
    AgentMessage,
    AgentStartEvent,
    AssistantMessage,
    AssistantMessageEvent,
    Context,
    EventStream,
    MessageEndEvent,
    MessageStartEvent,
    Model,
    SimpleStreamOptions,
    StreamFn,
    StreamResponse,
    ToolResultMessage,
    TurnEndEvent,
    TurnStartEvent,
    is_agent_end_event,
)

__all__ = [
    "ResponseStreamState",
    "StreamEventHandler",
    "TurnProcessingResult",
    "agent_loop",
    "agent_loop_continue",
    "create_agent_stream",
    "run_loop",
    "stream_assistant_response",
    "stream_simple",
]

logger = logging.getLogger("tinyagent.agent_loop")

_TERMINAL_STOP_REASONS = ("error", "aborted")


@dataclass
class ResponseStreamState:
    """Low-level: what a response stream has produced so far (kept for compatibility)."""

    partial_message: AssistantMessage | None = None
    added_partial: bool = False


@dataclass
class TurnProcessingResult:
    """Low-level: the outcome of one turn (kept for compatibility)."""

    pending_messages: list[AgentMessage] = field(default_factory=list)
    has_more_tool_calls: bool = False
    first_turn: bool = False
    should_continue: bool = False


StreamEventHandler = Callable[[AssistantMessageEvent], Awaitable[AssistantMessage | None]]


async def stream_simple(
    model: Model, context: Context, options: SimpleStreamOptions
) -> StreamResponse:
    """The fallback ``stream_fn``: there is no built-in default provider."""
    raise NotImplementedError("stream_simple must be provided")


def create_agent_stream() -> EventStream[Any, list[AgentMessage]]:
    return EventStream(is_agent_end_event, lambda event: event.messages)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def agent_loop(
    prompts: list[AgentMessage],
    context: AgentContext,
    config: AgentLoopConfig,
    signal: asyncio.Event | None = None,
    stream_fn: StreamFn | None = None,
) -> EventStream[Any, list[AgentMessage]]:
    """Start a run on the running loop and return its event stream at once.

    ``agent_start, turn_start, message_start(p) message_end(p) for each prompt``, then the turns
    of ``run_loop`` on a context holding the history plus the prompts.
    """
    asyncio.get_running_loop()  # raises before anything is made when no loop runs
    stream = create_agent_stream()
    body = open_run(list(prompts), context, config, signal, stream.push, stream_fn)
    start_run(_ending(body, stream), stream.set_exception)
    return stream


def agent_loop_continue(
    context: AgentContext,
    config: AgentLoopConfig,
    signal: asyncio.Event | None = None,
    stream_fn: StreamFn | None = None,
) -> EventStream[Any, list[AgentMessage]]:
    """Continue from the history without a new message: ``agent_start, turn_start, message_start(A)``…"""
    check_can_continue(context.messages)
    asyncio.get_running_loop()
    stream = create_agent_stream()
    body = open_run([], context, config, signal, stream.push, stream_fn)
    start_run(_ending(body, stream), stream.set_exception)
    return stream


def check_can_continue(messages: list[AgentMessage]) -> None:
    if not messages:
        raise ValueError("Cannot continue: no messages in context")
    role = getattr(messages[-1], "role", None)
    if role == "assistant":
        raise ValueError("Cannot continue from message role: assistant")


def start_run(
    coro: Awaitable[Any], on_crash: Callable[[BaseException], None] | None = None
) -> asyncio.Task[None]:
    """Run ``coro`` as a run task: cancelling it from outside aborts the run
    (docs/events.md#abort)."""
    task = asyncio.get_running_loop().create_task(_last_resort(coro, on_crash))
    keep_alive(task)
    return task


async def _last_resort(
    coro: Awaitable[Any], on_crash: Callable[[BaseException], None] | None
) -> None:
    mark_run_task()
    # The loop closes every failure itself; this only catches an emit() that keeps raising.
    try:
        await coro
    except BaseException as exc:
        logger.exception("agent run failed outside the loop's own error handling")
        if on_crash is not None:
            on_crash(exc)
        if not isinstance(exc, Exception):
            raise


async def _ending(body: Awaitable[list[AgentMessage]], stream: EventStream[Any, Any]) -> None:
    """Await a run and hand its new messages to ``stream`` as its result."""
    stream.end(await body)


async def open_run(
    prompts: list[AgentMessage],
    context: AgentContext,
    config: AgentLoopConfig,
    signal: asyncio.Event | None,
    emit: Callable[[AgentEvent], None],
    stream_fn: StreamFn | None,
) -> list[AgentMessage]:
    """A whole run: ``emit`` its events, return its new messages."""
    # Every run has a signal, so that cancelling its task can become an abort.
    signal = signal if signal is not None else RunSignal()
    emit(AgentStartEvent())
    emit(TurnStartEvent())
    for prompt in prompts:
        emit(MessageStartEvent(message=prompt))
        emit(MessageEndEvent(message=prompt))
    current = AgentContext(
        system_prompt=context.system_prompt,
        messages=[*context.messages, *prompts],
        tools=context.tools,
    )
    new_messages = list(prompts)
    await play_turns(current, new_messages, config, signal, emit, stream_fn)
    return new_messages


# --------------------------------------------------------------------------------------------
# The turns
# --------------------------------------------------------------------------------------------


class _RunControl:
    """What the turns need to know besides the messages: why the run must close, if it must."""

    def __init__(self, emit: Callable[[AgentEvent], None], signal: asyncio.Event | None) -> None:
        self.emit = emit
        self.signal = signal
        self.turn_open = True  # run_loop starts inside turn 1
        self.ended = False
        self.failure: str | None = None  # a poll or hook failed: close with this error
        self.must_close = False  # an abort landed while we awaited user code

    def closing(self) -> bool:
        return self.failure is not None or self.must_close

    def start_turn(self) -> None:
        self.turn_open = True
        self.emit(TurnStartEvent())

    def end_turn(self, message: AgentMessage, tool_results: list[ToolResultMessage]) -> None:
        self.turn_open = False
        self.emit(TurnEndEvent(message=message, tool_results=tool_results))

    def announce(self, message: AgentMessage) -> None:
        self.emit(MessageStartEvent(message=message))
        self.emit(MessageEndEvent(message=message))

    def end_run(self, new_messages: list[AgentMessage]) -> None:
        self.ended = True
        self.emit(AgentEndEvent(messages=new_messages))

    async def guarded(self, label: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Await user code (polls, ``should_stop_after_turn``) without trusting it to stop."""
        watch = AbortWatch(self.signal)
        try:
            value = await maybe_await(fn(*args))
        except asyncio.CancelledError:
            if watch.stop() or absorb_external_cancel(self.signal):
                self.must_close = True
                return None
            raise
        except Exception as exc:
            watch.stop()
            logger.exception("%s failed", label)
            self.failure = f"{label} failed: {type(exc).__name__}: {exc}"
            return None
        except BaseException:
            watch.stop()
            raise
        if watch.stop():
            self.must_close = True
        return value

    async def poll(self, label: str, provider: Callable[[], Awaitable[list[AgentMessage]]] | None):
        # Once the run is closing or aborted, queues are left alone: unconsumed input stays queued.
        if provider is None or self.closing() or is_aborted(self.signal):
            return []
        return list(await self.guarded(label, provider) or [])


async def run_loop(
    current_context: AgentContext,
    new_messages: list[AgentMessage],
    config: AgentLoopConfig,
    signal: asyncio.Event | None,
    stream: EventStream[Any, Any],
    stream_fn: StreamFn | None = None,
) -> None:
    """Play turns onto ``stream`` until the model is done; its result is ``new_messages``."""
    try:
        await play_turns(current_context, new_messages, config, signal, stream.push, stream_fn)
    finally:
        stream.end(new_messages)


async def play_turns(
    current_context: AgentContext,
    new_messages: list[AgentMessage],
    config: AgentLoopConfig,
    signal: asyncio.Event | None,
    emit: Callable[[AgentEvent], None],
    stream_fn: StreamFn | None = None,
) -> None:
    """Play turns until the model is done, then emit ``agent_end`` (docs/events.md#run-structure).

    The caller has emitted ``agent_start`` and the first ``turn_start``. Never raises for provider,
    tool, hook or poll failures: they become messages, and every path ends with one ``agent_end``.
    """
    run = _RunControl(emit, signal)
    try:
        await _play_turns(run, current_context, new_messages, config, signal, stream_fn)
    except BaseException as exc:
        if not run.ended:
            _close_after_crash(run, exc, config, current_context, new_messages)
        if not isinstance(exc, Exception):
            raise


async def _play_turns(
    run: _RunControl,
    context: AgentContext,
    new_messages: list[AgentMessage],
    config: AgentLoopConfig,
    signal: asyncio.Event | None,
    stream_fn: StreamFn | None,
) -> None:
    get_steering = config.get_steering_messages
    pending = await run.poll("get_steering_messages", get_steering)  # poll 1: run start
    first_turn = True
    calls = 0  # LLM calls made in this run (max_turns)
    while True:  # outer loop: follow-ups
        has_more_tool_calls = True
        while has_more_tool_calls or pending or run.closing():  # inner loop: turns
            if not first_turn:
                run.start_turn()
            first_turn = False
            for message in pending:  # steering / follow-up input of this turn
                run.announce(message)
                context.messages.append(message)
                new_messages.append(message)
            pending = []

            # One assistant message per turn: the run's closing message, or a real LLM call.
            closing = _closing_message(run, config, calls)
            if closing is not None:
                _close(run, context, new_messages, closing)
                return
            reply = await assistant_reply(context, config, signal, run.emit, stream_fn)
            calls += 1
            new_messages.append(reply)
            if reply.stop_reason in _TERMINAL_STOP_REASONS:  # provider error, abort mid-stream
                run.end_turn(reply, [])
                run.end_run(new_messages)
                return

            async def poll_after_tools() -> list[AgentMessage]:  # poll 2, inside the batch
                return await run.poll("get_steering_messages", get_steering)

            batch = await run_tool_calls(
                context.tools,
                reply,
                signal,
                run.emit,
                poll_after_tools if get_steering is not None else None,
                config.before_tool_call,
                config.after_tool_call,
            )
            context.messages.extend(batch.tool_results)
            new_messages.extend(batch.tool_results)
            run.end_turn(reply, batch.tool_results)

            if is_aborted(signal):
                # Tools were cut short, or a listener failed: close with one more turn. An abort
                # after a complete answer with nothing pending is a no-op (docs/events.md#abort).
                if batch.tool_results or abort_outcome(signal)[0] != "aborted":
                    run.must_close = True
                    continue
                run.end_run(new_messages)
                return
            if run.closing():
                continue
            if batch.terminate:
                run.end_run(new_messages)
                return
            if config.should_stop_after_turn is not None:
                stop = await run.guarded(
                    "should_stop_after_turn",
                    config.should_stop_after_turn,
                    reply,
                    batch.tool_results,
                    context,
                    new_messages,
                )
                if run.closing():
                    continue
                if stop:
                    run.end_run(new_messages)
                    return
            has_more_tool_calls = len(batch.tool_results) > 0
            if has_more_tool_calls:
                pending = list(batch.steering_messages or [])
            else:
                pending = await run.poll("get_steering_messages", get_steering)  # poll 3
        follow_ups = await run.poll("get_follow_up_messages", config.get_follow_up_messages)
        if follow_ups or run.closing():
            pending = follow_ups
            continue
        break
    run.end_run(new_messages)


def _closing_message(
    run: _RunControl, config: AgentLoopConfig, calls: int
) -> AssistantMessage | None:
    """The message that ends the run without asking the model, or ``None`` to ask it."""
    if run.failure is not None:  # a poll or hook failed
        return synthetic_message(config, "error", run.failure)
    if is_aborted(run.signal):  # an abort (or a failed listener) while tools, polls or hooks ran
        return synthetic_message(config, *abort_outcome(run.signal))
    if config.max_turns is not None and calls >= config.max_turns:
        return synthetic_message(
            config, "error", f"turn limit reached (max_turns={config.max_turns})"
        )
    return None


def _close(
    run: _RunControl,
    context: AgentContext,
    new_messages: list[AgentMessage],
    reply: AssistantMessage,
) -> None:
    """End the run with one last turn holding ``reply``, made without contacting the model
    (the one place that makes a closing turn; docs/events.md#orders)."""
    if not run.turn_open:
        run.start_turn()
    context.messages.append(reply)
    run.announce(reply)
    new_messages.append(reply)
    run.end_turn(reply, [])
    run.end_run(new_messages)


def _close_after_crash(
    run: _RunControl,
    exc: BaseException,
    config: AgentLoopConfig,
    context: AgentContext,
    new_messages: list[AgentMessage],
) -> None:
    """An unexpected exception inside the loop ends the run like a provider failure
    (docs/events.md#failures)."""
    if isinstance(exc, Exception):
        logger.exception("unexpected error in the agent loop")
        reply = synthetic_message(config, "error", f"{type(exc).__name__}: {exc}")
    else:
        reply = synthetic_message(config, *abort_outcome(run.signal))
    _close(run, context, new_messages, reply)
