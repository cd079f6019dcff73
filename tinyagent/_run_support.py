"""Small pieces shared by the loop and the tool executor: abort watching, synthetic messages.

Abort semantics (docs/events.md#abort) say the loop watches the signal itself and never depends on
provider or tool cooperation. Racing every awaited event against the signal would cost a task per
token, so instead one watcher per guarded phase waits for the signal and cancels the task doing
the work; the phase turns that ``CancelledError`` back into an abort. On a :class:`RunSignal` (every
signal the loop makes) the watcher is a listener called from the loop when the signal gets set,
not a task: a run's LLM calls, polls and tool batches then start no task of their own to watch it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from ._constants import ABORTED_TEXT
from .agent_types import (
    AgentLoopConfig,
    AssistantMessage,
    TextContent,
    ThinkingContent,
    ToolCallContent,
    new_zero_usage,
    now_ms,
)

T = TypeVar("T")

logger = logging.getLogger("tinyagent.agent_loop")


#: The run task, as seen from inside it (each task has its own copy of the context). Cancelling a
#: run task from outside is an abort request (docs/events.md#abort), so the run converts that
#: cancellation into its signal instead of dying; tasks it starts (tool calls) see the run task
#: here, not themselves, and keep ordinary cancellation.
_RUN_TASK: ContextVar[asyncio.Task[Any] | None] = ContextVar("tinyagent_run_task", default=None)


def mark_run_task() -> None:
    """Called first thing inside a run task."""
    _RUN_TASK.set(asyncio.current_task())


#: Strong references to tasks we let run on (runs, detached tools) so they are not collected.
_KEEP_ALIVE: set[asyncio.Task[Any]] = set()


def keep_alive(task: asyncio.Task[Any]) -> None:
    _KEEP_ALIVE.add(task)
    task.add_done_callback(_KEEP_ALIVE.discard)


async def maybe_await(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        return await value
    return value


class RunSignal(asyncio.Event):
    """A run's abort signal and why it was set.

    It is an ``asyncio.Event``, as tools and stream functions receive it. ``abort()`` without
    arguments is a plain stop; the Agent passes ``("error", "listener f failed: ...")`` when a
    listener raised (docs/events.md#failures): such a run ends exactly like an abort, but the
    closing message reports the failure. The first reason wins.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reason: tuple[str, str] | None = None
        # callback -> the loop it is called on (with call_soon, as set() wakes a waiter)
        self._listeners: dict[Callable[[], None], asyncio.AbstractEventLoop] = {}

    def abort(self, stop_reason: str = "aborted", text: str = ABORTED_TEXT) -> None:
        if not self.is_set():
            self.reason = (stop_reason, text)
        self.set()

    def set(self) -> None:
        super().set()
        if self._listeners:
            listeners = list(self._listeners.items())
            self._listeners.clear()
            for callback, loop in listeners:
                loop.call_soon(callback)

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once, soon after the signal gets set (at once if it is set), on
        the running loop; ``remove_listener(callback)`` forgets it. Cheaper than a task awaiting
        ``wait()``."""
        loop = asyncio.get_running_loop()
        if self.is_set():
            loop.call_soon(callback)
        else:
            self._listeners[callback] = loop

    def remove_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.pop(callback, None)


def abort_outcome(signal: asyncio.Event | None) -> tuple[str, str]:
    """The stop reason and text of the message that closes an aborted run."""
    if isinstance(signal, RunSignal) and signal.reason is not None:
        return signal.reason
    return "aborted", ABORTED_TEXT


def is_aborted(signal: asyncio.Event | None) -> bool:
    return signal is not None and signal.is_set()


def meaningful_blocks(partial: AssistantMessage | None) -> list[Any]:
    """Copies of the blocks of a partial worth keeping in a closing error/aborted message."""
    if partial is None:
        return []
    kept: list[Any] = []
    for block in partial.content:
        if isinstance(block, TextContent):
            if block.text:
                kept.append(block.model_copy())
        elif isinstance(block, ThinkingContent):
            if block.thinking:
                kept.append(block.model_copy())
        elif isinstance(block, ToolCallContent):
            if block.name or block.id:
                kept.append(block.model_copy(update={"arguments": dict(block.arguments)}))
    return kept


def synthetic_message(
    config: AgentLoopConfig,
    stop_reason: str,
    error_message: str,
    content: list[Any] | None = None,
    usage: dict[str, Any] | None = None,
) -> AssistantMessage:
    """An assistant message the loop makes itself (errors, aborts, the turn limit)."""
    model = config.model
    return AssistantMessage(
        content=content or [],
        stop_reason=stop_reason,  # type: ignore[arg-type]
        error_message=error_message,
        api=getattr(model, "api", None),
        provider=getattr(model, "provider", None),
        model=getattr(model, "id", None),
        usage=usage if usage is not None else new_zero_usage(),
        timestamp=now_ms(),
    )


class AbortWatch:
    """Cancels the current task when ``signal`` gets set; ``stop()`` says whether it did.

    Python 3.11's ``Task.uncancel()`` does not clear a pending cancel, but the watcher only runs
    while the guarded task is suspended inside the guarded block, so the ``CancelledError`` is
    always delivered inside that block, where the caller catches it.
    """

    __slots__ = ("signal", "task", "watcher", "listening", "fired", "_stopped")

    def __init__(self, signal: asyncio.Event | None) -> None:
        self.signal = signal
        self.fired = False
        self._stopped = False
        self.listening = False
        self.task = asyncio.current_task()
        self.watcher: asyncio.Task[None] | None = None
        if signal is not None and self.task is not None:
            if isinstance(signal, RunSignal):
                signal.add_listener(self._fire)
                self.listening = True
            else:  # a plain asyncio.Event passed by the caller
                self.watcher = asyncio.get_running_loop().create_task(self._watch(signal))

    async def _watch(self, signal: asyncio.Event) -> None:
        await signal.wait()
        self._fire()

    def _fire(self) -> None:
        if not self._stopped and self.task is not None and not self.task.done():
            self.fired = True
            self.task.cancel()

    def stop(self) -> bool:
        if not self._stopped:
            self._stopped = True
            if self.listening:
                cast(RunSignal, self.signal).remove_listener(self._fire)
            if self.watcher is not None:
                self.watcher.cancel()
            if self.fired and self.task is not None:
                self.task.uncancel()
        return self.fired


def signal_future(signal: asyncio.Event) -> asyncio.Future[Any]:
    """A future done once ``signal`` is set (a listener's on a :class:`RunSignal`, else a task
    awaiting ``wait()``); cancel it when no longer needed."""
    if not isinstance(signal, RunSignal):
        return asyncio.get_running_loop().create_task(signal.wait())
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def done() -> None:
        if not future.done():
            future.set_result(True)

    signal.add_listener(done)
    future.add_done_callback(lambda _: signal.remove_listener(done))
    return future


def absorb_external_cancel(signal: asyncio.Event | None) -> bool:
    """Turn a cancellation of a run task into an abort request; False when it must propagate.

    Only tasks started by ``agent_loop`` are converted: a caller that cancels its own await of a
    low-level function gets its ``CancelledError`` back (after the function closed what it opened).
    """
    task = asyncio.current_task()
    if signal is None or task is None or _RUN_TASK.get() is not task:
        return False
    signal.set()
    task.uncancel()
    return True


async def aclose_quietly(response: object, timeout: float = 1.0) -> None:
    """Call ``aclose()`` on a provider response if it has one, bounded and never raising."""
    aclose = getattr(response, "aclose", None)
    if aclose is None:
        return
    try:
        await asyncio.wait_for(maybe_await(aclose()), timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a misbehaving provider must not break the abort path
        logger.debug("response.aclose() failed: %s: %s", type(exc).__name__, exc)
