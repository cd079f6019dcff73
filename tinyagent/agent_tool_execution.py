"""Running the tool calls of one assistant message (docs/events.md#tool-batch).

Event tree of one batch (calls ``a``, ``b`` in content order)::

    tool_execution_start(a) tool_execution_start(b)        # all starts first
    tool_execution_update(...)*                            # live, from on_update
    tool_execution_end(a) message_start(Ra) message_end(Ra) # once all have settled,
    tool_execution_end(b) message_start(Rb) message_end(Rb) # in call order

Per call: validate the arguments (docs/events.md#argument-validation) → ``before_tool_call`` →
``execute``; every failure becomes an error result for that call only. ``after_tool_call`` runs
after all have settled.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._run_support import (
    absorb_external_cancel,
    is_aborted,
    keep_alive,
    maybe_await,
    signal_future,
)
from ._tool_functions import ToolError, as_async_execute
from ._tool_validation import ToolArgumentsError, validate_tool_arguments
from .agent_types import (
    AfterToolCallFn,
    AgentEvent,
    AgentMessage,
    AgentTool,
    AgentToolResult,
    AssistantMessage,
    BeforeToolCallFn,
    EventStream,
    MessageEndEvent,
    MessageStartEvent,
    TextContent,
    ToolCallContent,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    ToolExecutionUpdateEvent,
    ToolLoopControl,
    ToolResultMessage,
    now_ms,
)

__all__ = [
    "ToolArgumentsError",
    "ToolExecutionResult",
    "execute_tool_calls",
    "skip_tool_call",
    "validate_tool_arguments",
]

logger = logging.getLogger("tinyagent.agent_tool_execution")
#: Where a tool's own failures are reported (what its author needs to fix).
tool_logger = logging.getLogger("tinyagent.tools")

ABORTED_TOOL_TEXT = "Tool execution aborted"
SKIPPED_TOOL_TEXT = "Skipped due to queued user message."
#: How long an aborted tool that ignores cancellation is waited for before it is detached.
DETACH_AFTER_SECONDS = 1.0


class ToolExecutionResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)

    tool_results: list[ToolResultMessage] = Field(default_factory=list)
    steering_messages: list[AgentMessage] | None = None
    terminate: bool = False


@dataclass
class _Outcome:
    result: AgentToolResult
    is_error: bool = False
    terminate: bool = False
    aborted: bool = False
    exception: BaseException | None = None


def _error(text: str, aborted: bool = False, exception: BaseException | None = None) -> _Outcome:
    return _Outcome(
        AgentToolResult(content=[TextContent(text=text)]),
        is_error=True,
        aborted=aborted,
        exception=exception,
    )


def _logged_error(text: str, exception: BaseException) -> _Outcome:
    """An error result for a tool that broke its contract, logged so the author sees it."""
    tool_logger.warning("%s", text)
    return _error(text, exception=exception)


async def execute_tool_calls(
    tools: list[AgentTool] | None,
    assistant_message: AssistantMessage,
    signal: asyncio.Event | None,
    stream: EventStream[Any, Any],
    get_steering_messages: Callable[[], Awaitable[list[AgentMessage]]] | None = None,
    before_tool_call: BeforeToolCallFn | None = None,
    after_tool_call: AfterToolCallFn | None = None,
) -> ToolExecutionResult:
    """Run every tool call of ``assistant_message``, pushing the events onto ``stream``."""
    return await run_tool_calls(
        tools,
        assistant_message,
        signal,
        stream.push,
        get_steering_messages,
        before_tool_call,
        after_tool_call,
    )


async def run_tool_calls(
    tools: list[AgentTool] | None,
    assistant_message: AssistantMessage,
    signal: asyncio.Event | None,
    emit: Callable[[AgentEvent], None],
    get_steering_messages: Callable[[], Awaitable[list[AgentMessage]]] | None = None,
    before_tool_call: BeforeToolCallFn | None = None,
    after_tool_call: AfterToolCallFn | None = None,
) -> ToolExecutionResult:
    """Run every tool call of ``assistant_message`` concurrently, ``emit`` the events, and report
    in call order (docs/events.md#tool-batch)."""
    calls = [b for b in assistant_message.content if isinstance(b, ToolCallContent)]
    if not calls:
        return ToolExecutionResult()
    for call in calls:
        emit(
            ToolExecutionStartEvent(
                tool_call_id=call.id or "", tool_name=call.name or "", args=call.arguments
            )
        )

    finished = [False] * len(calls)
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(
            _run_call(
                call, _find_tool(tools, call.name), signal, emit, before_tool_call, finished, i
            )
        )
        for i, call in enumerate(calls)
    ]
    caller_cancelled = False
    try:
        settled = await _settle(tasks, signal)
    except asyncio.CancelledError:
        if not absorb_external_cancel(signal):
            caller_cancelled = True
        settled = {t for t in tasks if t.done()}
        await _cancel_and_detach(tasks)

    # Calls that had not finished when the abort came get the aborted result, even if they
    # returned something while being cancelled.
    outcomes: list[_Outcome] = []
    for call, task in zip(calls, tasks, strict=True):
        if task not in settled or task.cancelled():
            outcomes.append(_error(ABORTED_TOOL_TEXT, aborted=True))
        elif (failure := task.exception()) is not None:  # a failure outside the tool itself
            text = f"{type(failure).__name__}: {failure}"
            logger.error("tool call %r failed: %s", call.name, text, exc_info=failure)
            outcomes.append(_error(text, exception=failure))
        else:
            outcomes.append(task.result())

    results: list[ToolResultMessage] = []
    for call, outcome in zip(calls, outcomes, strict=True):
        message, result, exception = _result_message(call, outcome)
        original = message
        # After-hooks are skipped once the run is aborted: the run is being torn down, and a
        # hook must not be able to hold it open. Finished calls keep their results as they are.
        if after_tool_call is not None and not outcome.aborted and not is_aborted(signal):
            message = await _apply_after_hook(after_tool_call, call, message)
        if message is not original:  # replaced by the after hook
            result = AgentToolResult(message.content, message.details, message.terminate)
        emit(
            ToolExecutionEndEvent(
                tool_call_id=call.id or "",
                tool_name=call.name or "",
                result=result,
                is_error=message.is_error,
                args=call.arguments,
                exception=exception,
            )
        )
        emit(MessageStartEvent(message=message))
        emit(MessageEndEvent(message=message))
        results.append(message)
    if caller_cancelled:
        raise asyncio.CancelledError

    terminate = any(m.terminate for m in results)
    steering: list[AgentMessage] | None = None
    if not terminate and not is_aborted(signal) and get_steering_messages is not None:
        steering = list(await get_steering_messages() or []) or None  # poll 2
    return ToolExecutionResult(
        tool_results=results, steering_messages=steering, terminate=terminate
    )


def _result_message(
    call: ToolCallContent, outcome: _Outcome
) -> tuple[ToolResultMessage, AgentToolResult, BaseException | None]:
    def build(source: _Outcome) -> ToolResultMessage:
        return ToolResultMessage(
            tool_call_id=call.id,
            tool_name=call.name,
            content=source.result.content,
            details=source.result.details,
            is_error=source.is_error,
            terminate=source.terminate or source.result.terminate,
            timestamp=now_ms(),
        )

    try:
        return build(outcome), outcome.result, outcome.exception
    except ValidationError as exc:  # e.g. a tool put a str into its content list
        reason = exc.errors()[0].get("msg", str(exc)) if exc.errors() else str(exc)
        failed = _logged_error(f"Tool {call.name} returned invalid content: {reason}", exc)
        return build(failed), failed.result, exc


def _find_tool(tools: list[AgentTool] | None, name: str | None) -> AgentTool | None:
    for tool in tools or ():
        if tool.name == name:
            return tool
    return None


async def _settle(
    tasks: list[asyncio.Task[_Outcome]], signal: asyncio.Event | None
) -> set[asyncio.Task[_Outcome]]:
    """Wait for every call, or for the abort; return the calls that finished normally."""
    if signal is None:
        await asyncio.wait(tasks)
        return set(tasks)
    if not signal.is_set():
        abort_waiter = signal_future(signal)
        try:
            pending: set[asyncio.Future[Any]] = set(tasks)
            while pending and not abort_waiter.done():
                done, _ = await asyncio.wait(
                    pending | {abort_waiter}, return_when=asyncio.FIRST_COMPLETED
                )
                pending -= done
        finally:
            abort_waiter.cancel()
    settled = {t for t in tasks if t.done()}
    if len(settled) < len(tasks):
        await _cancel_and_detach(tasks)
    return settled


async def _cancel_and_detach(tasks: list[asyncio.Task[_Outcome]]) -> None:
    """Cancel unfinished calls; wait at most ``DETACH_AFTER_SECONDS``, then leave the stubborn ones."""
    running = [t for t in tasks if not t.done()]
    for task in running:
        task.cancel()
    if not running:
        return
    _, still = await asyncio.wait(running, timeout=DETACH_AFTER_SECONDS)
    for task in still:
        logger.warning(
            "tool task %s ignored cancellation for %.1f s; detaching it",
            task.get_name(),
            DETACH_AFTER_SECONDS,
        )
        keep_alive(task)
        task.add_done_callback(_retrieve)
    for task in running:
        if task not in still:
            _retrieve(task)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # mark it retrieved: an aborted tool's late failure is not news


async def _run_call(
    call: ToolCallContent,
    tool: AgentTool | None,
    signal: asyncio.Event | None,
    emit: Callable[[AgentEvent], None],
    before_tool_call: BeforeToolCallFn | None,
    finished: list[bool],
    index: int,
) -> _Outcome:
    """validate → before_tool_call → execute, for one call; failures become error outcomes."""
    try:
        return await _run_call_steps(call, tool, signal, emit, before_tool_call, finished, index)
    finally:
        finished[index] = True  # on_update calls after this are ignored


async def _run_call_steps(
    call: ToolCallContent,
    tool: AgentTool | None,
    signal: asyncio.Event | None,
    emit: Callable[[AgentEvent], None],
    before_tool_call: BeforeToolCallFn | None,
    finished: list[bool],
    index: int,
) -> _Outcome:
    name = call.name
    try:
        args = validate_tool_arguments(tool, call) if tool is not None else _parse_only(call)
    except ToolArgumentsError as exc:
        return _error(f"{exc}\nFix the arguments and call the tool again.")

    forced_terminate = False
    if before_tool_call is not None:
        control = await _call_hook("before_tool_call", before_tool_call, call, tool, args)
        if isinstance(control, _Outcome):
            return control
        if control is not None:
            if control.result is not None:
                is_error = True if control.is_error is None else bool(control.is_error)
                terminate = control.terminate or control.result.terminate
                return _Outcome(control.result, is_error=is_error, terminate=terminate)
            forced_terminate = bool(control.terminate)

    if tool is None:
        return _error(f"Tool {name} not found")
    if tool.execute is None:
        return _error(f"Tool {name} has no execute function")

    def on_update(partial_result: AgentToolResult) -> None:
        if not finished[index]:
            emit(
                ToolExecutionUpdateEvent(
                    tool_call_id=call.id or "",
                    tool_name=name or "",
                    args=call.arguments,
                    partial_result=partial_result,
                )
            )

    try:
        # AgentTool wraps a plain def when it is assigned; a duck-typed tool object gets the same.
        pending = as_async_execute(name or "", tool.execute)(call.id or "", args, signal, on_update)
        if not inspect.isawaitable(pending):
            return _error(f"Tool {name}: execute must be an async function")
        result = await pending
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we (or the caller) cancelled this call
        return _error(str(exc) or "Tool execution cancelled")
    except ToolError as exc:  # an expected failure, for the model to fix: no traceback
        tool_logger.debug("tool %r reported: %s", name, exc)
        return _error(str(exc) or type(exc).__name__, exception=exc)
    except Exception as exc:
        # The model gets the message; the person gets the traceback, in the log and on the event.
        tool_logger.warning("tool %r raised %s: %s", name, type(exc).__name__, exc, exc_info=exc)
        return _error(str(exc) or type(exc).__name__, exception=exc)
    if not isinstance(result, AgentToolResult):
        text = f"Tool {name} returned {type(result).__name__}; expected AgentToolResult"
        return _logged_error(text, TypeError(text))
    return _Outcome(result, is_error=False, terminate=forced_terminate or result.terminate)


def _parse_only(call: ToolCallContent) -> dict[str, Any]:
    """Arguments of a call to an unknown tool: parsed for the hook, not validated."""
    return validate_tool_arguments(None, call)


async def _call_hook(
    label: str, hook: Callable[..., Any], *args: Any
) -> ToolLoopControl | _Outcome | None:
    try:
        control = await maybe_await(hook(*args))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("%s hook failed: %s: %s", label, type(exc).__name__, exc)
        return _error(f"{label} hook failed: {type(exc).__name__}: {exc}")
    if control is None or isinstance(control, ToolLoopControl):
        return control
    return _error(f"{label} must return ToolLoopControl or None, got {type(control).__name__}")


async def _apply_after_hook(
    hook: AfterToolCallFn, call: ToolCallContent, message: ToolResultMessage
) -> ToolResultMessage:
    control = await _call_hook("after_tool_call", hook, call, message)
    if control is None:
        return message
    if isinstance(control, _Outcome):
        return message.model_copy(
            update={"content": list(control.result.content), "details": {}, "is_error": True}
        )
    if control.result is not None:
        return ToolResultMessage(
            tool_call_id=message.tool_call_id,
            tool_name=message.tool_name,
            content=list(control.result.content),
            details=control.result.details,
            is_error=message.is_error if control.is_error is None else bool(control.is_error),
            terminate=message.terminate or control.terminate or control.result.terminate,
            timestamp=message.timestamp,
        )
    if control.is_error is not None:
        message.is_error = bool(control.is_error)
    if control.terminate:
        message.terminate = True
    return message


def skip_tool_call(tool_call: ToolCallContent, stream: EventStream[Any, Any]) -> ToolResultMessage:
    """Report a call as skipped without running it (not used by the loop;
    docs/events.md#tool-batch)."""
    call_id, name = tool_call.id or "", tool_call.name or ""
    stream.push(
        ToolExecutionStartEvent(tool_call_id=call_id, tool_name=name, args=tool_call.arguments)
    )
    result = AgentToolResult(content=[TextContent(text=SKIPPED_TOOL_TEXT)])
    message = ToolResultMessage(
        tool_call_id=tool_call.id,
        tool_name=tool_call.name,
        content=list(result.content),
        is_error=True,
        timestamp=now_ms(),
    )
    stream.push(
        ToolExecutionEndEvent(
            tool_call_id=call_id,
            tool_name=name,
            result=result,
            is_error=True,
            args=tool_call.arguments,
        )
    )
    stream.push(MessageStartEvent(message=message))
    stream.push(MessageEndEvent(message=message))
    return message
