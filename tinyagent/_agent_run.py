"""The machinery of one Agent run: its per-run objects, the event dispatcher, input handling.

Kept apart from ``agent.py`` so that the Agent class reads as its public API. The dispatcher is
the per-event hot path: it updates the state, feeds ``Agent.stream()`` consumers and calls the
listeners synchronously; a listener failure ends the run like an abort that reports it
(docs/events.md#failures).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import Any

from ._run_support import RunSignal
from .agent_types import (
    AgentEvent,
    AgentMessage,
    AgentState,
    AssistantMessage,
    ImageContent,
    TextContent,
    UserMessage,
    now_ms,
)

logger = logging.getLogger("tinyagent.agent")

DEFAULT_MODE = "one-at-a-time"


class Run:
    """One run: its loop, signal and task, and where its events go besides the listeners."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.signal = RunSignal()
        self.task: asyncio.Task[None] | None = None
        # reset()/clear_messages() cut it off from the state (docs/events.md#agent-state)
        self.detached = False
        self.listener_failed = False
        self.new_messages: list[AgentMessage] = []
        self.model: Any = None  # the model this run talks to (the Agent's, or its options')
        self.finished = threading.Event()
        # Agent.stream(): the events, and the consumer's future while it waits.
        self.outbox: deque[AgentEvent] | None = None
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def queue_take(queue: list[AgentMessage], mode: str) -> list[AgentMessage]:
    if not queue:
        return []
    if mode == DEFAULT_MODE:
        return [queue.pop(0)]
    taken = list(queue)  # "all", and any other non-empty mode
    queue.clear()
    return taken


def make_dispatcher(agent: Any, run: Run) -> Callable[[AgentEvent], None]:
    """The ``push`` of a run's stream: state first, then the listeners, in a plain loop."""
    state: AgentState = agent.state

    def dispatch(event: AgentEvent) -> None:
        if event.type == "message_update":
            # One partial per stream: skip the (pydantic) assignment when it is unchanged.
            message = event.message  # type: ignore[union-attr]
            if state.stream_message is not message and not run.detached:
                state.stream_message = message
        else:
            apply_event(state, run, event)
        outbox = run.outbox
        if outbox is not None:
            outbox.append(event)
            run.wake()
        for fn in agent._listeners:
            try:
                returned = fn(event)
            except Exception as exc:
                listener_failed(run, fn, exc, event)
                continue
            if returned is not None and inspect.isawaitable(returned):
                discard_awaitable(fn, returned)

    return dispatch


def apply_event(state: AgentState, run: Run, event: AgentEvent) -> None:
    """Update the state for one event, before any listener sees it (docs/events.md#agent-state)."""
    kind = event.type
    if kind == "agent_end":
        run.new_messages = event.messages  # type: ignore[union-attr]
    if run.detached:
        return
    if kind == "message_start":
        state.stream_message = event.message  # type: ignore[union-attr]
    elif kind == "message_end":
        state.stream_message = None
        state.messages.append(event.message)  # type: ignore[union-attr,arg-type]
    elif kind == "tool_execution_start":
        state.pending_tool_calls = {*state.pending_tool_calls, event.tool_call_id}  # type: ignore[union-attr]
    elif kind == "tool_execution_end":
        state.pending_tool_calls = state.pending_tool_calls - {event.tool_call_id}  # type: ignore[union-attr]
    elif kind == "turn_end":
        message = event.message  # type: ignore[union-attr]
        if isinstance(message, AssistantMessage) and message.error_message:
            state.error = message.error_message
    elif kind == "agent_end":
        state.is_streaming = False
        state.stream_message = None


def listener_failed(run: Run, fn: Callable[..., Any], exc: Exception, event: AgentEvent) -> None:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    if run.listener_failed or event.type == "agent_end" or run.signal.is_set():
        logger.error("listener %s failed: %s: %s", name, type(exc).__name__, exc, exc_info=exc)
        return
    # The first failure ends the run like an abort that reports it (docs/events.md#failures).
    run.listener_failed = True
    logger.error("listener %s failed; ending the run", name, exc_info=exc)
    run.signal.abort("error", f"listener {name} failed: {type(exc).__name__}: {exc}")


def discard_awaitable(fn: Callable[..., Any], returned: Any) -> None:
    close = getattr(returned, "close", None)
    if close is not None:
        close()
    name = getattr(fn, "__name__", None) or type(fn).__name__
    logger.warning("listener %s returned an awaitable; listeners are called synchronously", name)


def on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def abort_run(run: Run) -> None:
    if on_loop(run.loop):
        run.signal.set()
        return
    try:
        run.loop.call_soon_threadsafe(run.signal.set)
    except RuntimeError:  # the run's loop is closed: nothing left to stop
        pass


def copy_state(initial: AgentState | dict[str, Any] | None) -> AgentState:
    if initial is None:
        return AgentState()
    state = AgentState.model_validate(initial)
    if state is initial:  # never alias the caller's object or its lists
        state = state.model_copy()
    state.messages = list(state.messages)
    state.tools = list(state.tools)
    state.pending_tool_calls = set(state.pending_tool_calls)
    return state


def normalize_input(input: Any, images: list[ImageContent] | None) -> list[AgentMessage]:
    if isinstance(input, str):
        return [UserMessage(content=[TextContent(text=input), *(images or [])], timestamp=now_ms())]
    if images:
        raise ValueError("images are only accepted together with a str prompt")
    if isinstance(input, list):
        if not input:
            raise ValueError("prompt() needs at least one message; use continue_() to continue")
        return list(input)
    return [input]


async def run_events(run: Run) -> AsyncGenerator[AgentEvent, None]:
    """``Agent.stream()``: a run's events as the listeners get them; closing early aborts it."""
    outbox = run.outbox
    assert outbox is not None and run.task is not None
    ended = False
    try:
        while True:
            while outbox:
                event = outbox.popleft()
                ended = event.type == "agent_end"
                yield event
                if ended:
                    return
            if run.task.done():
                return
            run.waiter = run.loop.create_future()
            try:
                await run.waiter
            finally:
                run.waiter = None
    finally:
        # Closed early (aclose(), break): abort; either way the run's cleanup is awaited.
        if not run.task.done():
            if not ended:
                abort_run(run)
            await asyncio.wait({run.task})


async def text_pieces(events: AsyncGenerator[AgentEvent, None]) -> AsyncGenerator[str, None]:
    """``Agent.stream_text()``: each ``text_delta``; from a provider that sends no deltas, each
    text block's full text at its ``text_end``."""
    seen = 0  # characters of the current assistant message already yielded
    saw_delta = False
    try:
        async for event in events:
            if event.type == "message_start":
                seen, saw_delta = 0, False
                continue
            if event.type != "message_update" or not isinstance(event.message, AssistantMessage):
                continue
            inner = event.assistant_message_event
            if inner is not None and inner.type == "text_delta":
                saw_delta = True
                if inner.delta:
                    seen += len(inner.delta)
                    yield inner.delta
            elif not saw_delta and inner is not None and inner.type == "text_end":
                # A provider without text_delta events: yield the block's text at its end.
                # (The live partial may run ahead of a queued event, so it is not read here.)
                text = inner.content if isinstance(inner.content, str) else ""
                text = text or _text_of(event.message)[seen:]
                if text:
                    seen += len(text)
                    yield text
    finally:
        await events.aclose()


def _text_of(message: AssistantMessage) -> str:
    return "".join(b.text for b in message.content if isinstance(b, TextContent) and b.text)
