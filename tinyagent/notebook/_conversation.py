"""Conversations (one Agent each) and the run of one prompt with its per-run settings.

A :class:`Conversation` owns an Agent plus its *sticky* settings (model, provider, base URL,
system prompt, tool names). The default one lives for the kernel; named ones are created by
``--name``; ``--agent VAR`` wraps a user's Agent, whose own settings are changed for one run only
and restored when it ends. :func:`execute` is the single coroutine every path awaits: the
``%%agent`` transformer (on the kernel loop), the ``run_cell_magic`` fallback (on a worker-thread
loop), ``--bg`` tasks and the chat panel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import inspect
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tinyagent._run_errors import REPORTED_BY_CALLER
from tinyagent._run_options import RunOptions
from tinyagent.agent_types import (
    AgentTool,
    AgentToolResult,
    AssistantMessage,
    TextContent,
    ToolLoopControl,
    UserMessage,
)

from . import _approval
from ._config import Resolved, resolve
from ._kernel_tools import ASKS_FIRST
from ._render import Renderer

DENIED = "Tool call denied by the user"
STICKY = ("model", "provider", "base_url", "system")


def _new_agent() -> Any:
    from tinyagent.agent import Agent, AgentOptions
    from tinyagent.alchemy_provider import stream_alchemy_openai_completions

    # caching on by default: markers are stripped where the endpoint ignores them
    # (docs/wire.md#cache-markers)
    return Agent(
        AgentOptions(stream_fn=stream_alchemy_openai_completions, enable_prompt_caching=True)
    )


def build_model(resolved: Resolved) -> Any:
    from tinyagent.alchemy_provider import OpenAICompatModel

    kwargs: dict[str, Any] = {"provider": resolved.provider, "id": resolved.model}
    if resolved.base_url:
        kwargs["base_url"] = resolved.base_url
    return OpenAICompatModel(**kwargs)


class Conversation:
    def __init__(self, name: str, agent: Any = None, *, external: bool = False) -> None:
        self.name = name
        self.external = external
        self._agent = agent
        self.sticky: dict[str, Any] = {}
        self.tool_names: list[str] | None = None
        self.current: AgentRun | None = None
        self.always_approved: set[str] = set()  # tools answered "Always in this conversation"

    @property
    def agent(self) -> Any:
        if self._agent is None:
            self._agent = _new_agent()
        return self._agent

    def __repr__(self) -> str:
        return f"Conversation({self.name!r}, messages={len(self.agent.state.messages)})"

    def update_sticky(self, **values: Any) -> None:
        for key, value in values.items():
            if value is not None:
                self.sticky[key] = value

    def resolve(
        self, layers: list[tuple[str, Mapping[str, Any]]], run_options: Mapping[str, Any]
    ) -> Resolved:
        return resolve(("cell option", run_options), ("conversation", self.sticky), *layers)

    def running(self) -> bool:
        return self.current is not None and not self.current.done


@dataclass
class RunSpec:
    """Everything one run needs besides the conversation."""

    prompt: str | UserMessage  # a message when @mentions attached variable summaries
    resolved: Resolved | None = None  # None: leave an external Agent's model alone
    tools: list[AgentTool] | None = None  # None: keep the Agent's tools
    extra_tools: list[AgentTool] = field(default_factory=list)  # this cell only (--kernel)
    temperature: float | None = None
    max_tokens: int | None = None
    cache: bool | None = None
    confirm: bool = False
    instruction: str | None = None  # added to the system prompt for this run (--code)
    # --agent VAR: cell options applied on top of that Agent's own model for this run only
    overrides: dict[str, str] = field(default_factory=dict)
    on_done: list[Callable[[AssistantMessage | None], None]] = field(default_factory=list)


class AgentRun:
    """Handle of one run: ``.stop()``, ``await .wait()``, ``.done``, ``.result``
    (docs/notebook.md#background-runs)."""

    def __init__(self, conversation: Conversation, renderer: Renderer) -> None:
        self.conversation = conversation
        self.renderer = renderer
        self.result: AssistantMessage | None = None
        self.stopped = False
        self.error: BaseException | None = None
        self.thread = ""
        self._future: concurrent.futures.Future[AssistantMessage | None] = (
            concurrent.futures.Future()
        )

    @property
    def done(self) -> bool:
        return self._future.done()

    def stop(self) -> None:
        """Abort the run (docs/events.md#abort); safe from any thread, a no-op once it ended."""
        if not self.done:
            self.stopped = True
            self.conversation.agent.abort()

    async def wait(self) -> AssistantMessage | None:
        """Return the final assistant message once the run (cleanup included) has finished."""
        return await asyncio.wrap_future(self._future)

    def wait_sync(self, timeout: float | None = None) -> AssistantMessage | None:
        return self._future.result(timeout)

    def refuse(self, reason: str) -> None:
        """End the run before it starts: ``reason`` is shown as its banner, nothing is sent, and
        the conversation is left as it was (e.g. a provider key that is not set)."""
        self.renderer.start()
        self.renderer.note("banner", reason)
        self.renderer.finish()
        self._settle(None)

    def _settle(self, result: AssistantMessage | None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        if not self._future.done():
            self._future.set_result(result)

    def __repr__(self) -> str:
        status = "stopped" if self.stopped and self.done else "done" if self.done else "running"
        return f"AgentRun({self.conversation.name!r}, {status})"


def _timed_tool(tool: AgentTool, renderer: Renderer) -> AgentTool:
    """Wrap ``execute`` so each card shows its own duration and turns done/error on settling."""
    inner = tool.execute
    if inner is None:
        return tool

    async def execute(tool_call_id: str, args: Any, signal: Any, on_update: Any) -> AgentToolResult:
        started = time.monotonic()
        ok = False
        try:
            pending = inner(tool_call_id, args, signal, on_update)
            if not inspect.isawaitable(pending):
                raise TypeError(f"Tool {tool.name}: execute must be an async function")
            result = await pending
            ok = isinstance(result, AgentToolResult)
            return result
        finally:
            renderer.tool_finished(tool_call_id, ok, time.monotonic() - started)

    return dataclasses.replace(tool, execute=execute)


def _confirming(previous: Any, renderer: Renderer) -> Callable[..., Any]:
    async def before_tool_call(tool_call: Any, tool: Any, args: Any) -> ToolLoopControl | None:
        card = renderer.doc.card(tool_call.id or "", tool_call.name or "")
        if tool_call.name not in ASKS_FIRST and not await renderer.confirm(card):
            return ToolLoopControl(
                result=AgentToolResult(content=[TextContent(text=DENIED)]), is_error=True
            )
        if previous is None:
            return None
        value = previous(tool_call, tool, args)
        return await value if inspect.isawaitable(value) else value

    return before_tool_call


def approver(conversation: Conversation, renderer: Renderer) -> _approval.Approver:
    """Questions of tools that ask first (``run_python``), answered in this run's view; an
    "Always" answer holds for the rest of the conversation."""

    async def ask(tool_call_id: str, tool_name: str, detail: str) -> str:
        if tool_name in conversation.always_approved:
            return _approval.RUN
        card = renderer.doc.card(tool_call_id, tool_name)
        choice = await renderer.choose(card, (_approval.RUN, _approval.SKIP, _approval.ALWAYS))
        if choice == _approval.ALWAYS:
            conversation.always_approved.add(tool_name)
        return choice

    return ask


def _run_options(conversation: Conversation, spec: RunSpec, renderer: Renderer) -> RunOptions:
    """This cell's settings as per-run options; the Agent keeps its own.

    In the kernel's own conversations the model, system prompt and ``-t`` tools are sticky (they
    stay for the next cell), so they go onto the Agent; everything else holds for this run only.
    With ``--agent VAR`` every cell option holds for this run only.
    """
    agent = conversation.agent
    resolved = spec.resolved
    per_run: dict[str, Any] = {}
    if resolved is not None:
        model = build_model(resolved)
        current = agent.state.model
        same = current is not None and all(
            getattr(current, k, None) == getattr(model, k, None)
            for k in ("provider", "id", "base_url")
        )
        if not same:
            agent.set_model(model)
        if resolved.system is not None:
            agent.set_system_prompt(resolved.system)
        if spec.tools is not None:
            agent.set_tools(list(spec.tools))
        per_run["temperature"] = (
            resolved.temperature if spec.temperature is None else spec.temperature
        )
        per_run["max_tokens"] = resolved.max_tokens if spec.max_tokens is None else spec.max_tokens
    else:
        per_run.update(_overrides(agent, spec.overrides))
        if spec.temperature is not None:
            per_run["temperature"] = spec.temperature
        if spec.max_tokens is not None:
            per_run["max_tokens"] = spec.max_tokens
    if spec.cache is not None:
        per_run["enable_prompt_caching"] = spec.cache
    if spec.instruction:
        system = per_run.get("system_prompt", agent.state.system_prompt) or ""
        per_run["system_prompt"] = f"{system}\n\n{spec.instruction}".strip()
    tools = spec.tools if spec.tools is not None else list(agent.state.tools)
    per_run["tools"] = [_timed_tool(tool, renderer) for tool in [*tools, *spec.extra_tools]]
    if spec.confirm:
        per_run["before_tool_call"] = _confirming(agent.before_tool_call, renderer)
    return RunOptions(**per_run)


def _overrides(agent: Any, overrides: Mapping[str, str]) -> dict[str, Any]:
    """Change only what the cell asked for, keeping the Agent's own routing and headers."""
    per_run: dict[str, Any] = {}
    update = {
        field: overrides[key]
        for key, field in (("model", "id"), ("provider", "provider"), ("base_url", "base_url"))
        if overrides.get(key)
    }
    if update:
        current = agent.state.model
        if current is not None:
            per_run["model"] = current.model_copy(update=update)
        else:
            per_run["model"] = build_model(resolve(("cell option", overrides)))
    if overrides.get("system") is not None:
        per_run["system_prompt"] = overrides["system"]
    return per_run


def last_assistant(agent: Any) -> AssistantMessage | None:
    for message in reversed(agent.state.messages):
        if getattr(message, "role", None) == "assistant":
            return message  # type: ignore[no-any-return]
    return None


async def execute(
    conversation: Conversation, spec: RunSpec, run: AgentRun
) -> AssistantMessage | None:
    """Run one prompt on the current loop, rendering it; never raises for a stopped run."""
    agent = conversation.agent
    renderer = run.renderer
    conversation.current = run
    run.thread = threading.current_thread().name  # MainThread on the kernel loop path
    unsubscribe: Callable[[], None] | None = None
    result: AssistantMessage | None = None
    error: BaseException | None = None
    try:
        renderer.start()
        options = _run_options(conversation, spec, renderer)

        def stop_requested_early(event: Any) -> None:
            # a stop() that came before the Agent's run existed takes effect at its start
            if event.type == "agent_start" and run.stopped:
                agent.abort()

        unsubscribe_stop = agent.subscribe(stop_requested_early)
        unsubscribe_render = agent.subscribe(renderer)

        def unsubscribe_both() -> None:
            unsubscribe_stop()
            unsubscribe_render()

        unsubscribe = unsubscribe_both
        # The cell shows the run's error as a banner; no second copy on stderr.
        reported = REPORTED_BY_CALLER.set(True)
        asking = _approval.APPROVER.set(approver(conversation, renderer))
        try:
            result = await agent.prompt(spec.prompt, options=options)
        except asyncio.CancelledError:
            # kernel interrupt: the Agent aborted and completed the run before re-raising
            # (docs/events.md#abort); the partial is kept as an aborted message
            run.stopped = True
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            result = last_assistant(agent)
        except RuntimeError as exc:
            error = exc
            renderer.note("banner", f"Error: {exc}")
        finally:
            _approval.APPROVER.reset(asking)
            REPORTED_BY_CALLER.reset(reported)
    finally:
        if unsubscribe is not None:
            unsubscribe()
        renderer.finish()
        for callback in spec.on_done:
            try:
                callback(result)
            except Exception:  # noqa: BLE001 - storing --out must not hide the answer
                import logging

                logging.getLogger("tinyagent.notebook").exception("post-run callback failed")
        run._settle(result, error)
    return result
