"""The ``Agent``: conversation state, event subscription, and runs of the loop
(docs/architecture.md#agent).

A run lives on the event loop that started it (docs/architecture.md#event-loops). Everything
loop-bound (the abort signal, the run task, the stream consumer's future) is made per run, so one
Agent can serve the kernel loop, a worker-thread loop and a chat panel in turn. The loop's events
reach the Agent synchronously: the loop's ``emit`` is the Agent's dispatcher, which updates the
state first and then calls the listeners in subscription order, with no queue in between.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeAlias

from ._agent_run import (
    DEFAULT_MODE,
    Run,
    abort_run,
    copy_state,
    make_dispatcher,
    normalize_input,
    on_loop,
    queue_take,
    run_events,
    text_pieces,
)
from ._messages import default_convert_to_llm, extract_text
from ._run_errors import REPORTED_BY_CALLER, AgentRunError, log_run_error
from ._run_options import RunOptions, pick
from ._run_options import check as check_options
from ._run_support import maybe_await
from .agent_loop import open_run, start_run
from .agent_types import (
    AfterToolCallFn,
    AgentContext,
    AgentEvent,
    AgentLoopConfig,
    AgentMessage,
    AgentState,
    AgentTool,
    ApiKeyResolver,
    AssistantMessage,
    BeforeToolCallFn,
    ConvertToLlmFn,
    ImageContent,
    Model,
    ShouldStopAfterTurnFn,
    StreamFn,
    ThinkingBudgets,
    ThinkingLevel,
    TransformContextFn,
)
from .batch._map import agent_map
from .caching import add_cache_breakpoints

__all__ = [
    "Agent",
    "AgentOptions",
    "AgentRunError",
    "RunOptions",
    "ApiKeyResolverCallback",
    "ConvertToLlmCallback",
    "TransformContextCallback",
    "default_convert_to_llm",
    "extract_text",
]

logger = logging.getLogger("tinyagent.agent")

ConvertToLlmCallback = ConvertToLlmFn
TransformContextCallback = TransformContextFn
ApiKeyResolverCallback = ApiKeyResolver

#: What ``prompt()``, ``prompt_text()``, ``stream()`` and ``stream_text()`` take: a ``str`` (which
#: may come with images), one message or a list of them.
PromptInput: TypeAlias = str | AgentMessage | list[AgentMessage]
Images: TypeAlias = list[ImageContent] | None

_BUSY_PROMPT = (
    "Agent is already processing a prompt. Use steer() or follow_up() to queue messages, "
    "or wait for completion."
)
_BUSY_CONTINUE = "Agent is already processing. Wait for completion before continuing."


def _final_error(messages: list[AgentMessage]) -> AssistantMessage | None:
    """The run's last assistant message when the run ended in an error."""
    for message in reversed(messages):
        if isinstance(message, AssistantMessage):
            return message if message.stop_reason == "error" else None
    return None


@dataclass
class AgentOptions:
    initial_state: AgentState | None = None
    convert_to_llm: ConvertToLlmFn | None = default_convert_to_llm
    transform_context: TransformContextFn | None = None
    steering_mode: str = DEFAULT_MODE
    follow_up_mode: str = DEFAULT_MODE
    stream_fn: StreamFn | None = None
    session_id: str | None = None
    get_api_key: ApiKeyResolver | None = None
    thinking_budgets: ThinkingBudgets | None = None
    enable_prompt_caching: bool = False
    before_tool_call: BeforeToolCallFn | None = None
    after_tool_call: AfterToolCallFn | None = None
    should_stop_after_turn: ShouldStopAfterTurnFn | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_turns: int | None = 100


class Agent:
    """A conversational agent: state, listeners, and the loop that runs prompts
    (docs/architecture.md#agent)."""

    def __init__(self, opts: AgentOptions | None = None) -> None:
        opts = opts if opts is not None else AgentOptions()
        self._state = copy_state(opts.initial_state)
        self.convert_to_llm = opts.convert_to_llm
        self.transform_context = opts.transform_context
        self._steering_mode = opts.steering_mode or DEFAULT_MODE
        self._follow_up_mode = opts.follow_up_mode or DEFAULT_MODE
        self.stream_fn = opts.stream_fn
        self._session_id = opts.session_id
        self.get_api_key = opts.get_api_key
        self._thinking_budgets = opts.thinking_budgets
        self.enable_prompt_caching = opts.enable_prompt_caching
        self.before_tool_call = opts.before_tool_call
        self.after_tool_call = opts.after_tool_call
        self.should_stop_after_turn = opts.should_stop_after_turn
        self.temperature = opts.temperature
        self.max_tokens = opts.max_tokens
        self.max_turns = opts.max_turns
        self._listeners: tuple[Callable[[AgentEvent], Any], ...] = ()
        self._steering_queue: list[AgentMessage] = []
        self._follow_up_queue: list[AgentMessage] = []
        self._lock = threading.Lock()  # guards _run: "already processing" from any thread
        self._run: Run | None = None

    def __repr__(self) -> str:
        model = self._state.model
        return (
            f"Agent(model={getattr(model, 'id', None)!r}, messages={len(self._state.messages)}, "
            f"is_streaming={self._state.is_streaming})"
        )

    # -- properties ---------------------------------------------------------------------------

    @property
    def state(self) -> AgentState:
        return self._state

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @session_id.setter
    def session_id(self, value: str | None) -> None:
        self._session_id = value

    @property
    def thinking_budgets(self) -> ThinkingBudgets | None:
        return self._thinking_budgets

    @thinking_budgets.setter
    def thinking_budgets(self, value: ThinkingBudgets | None) -> None:
        self._thinking_budgets = value

    # -- listeners ----------------------------------------------------------------------------

    def subscribe(self, fn: Callable[[AgentEvent], None]) -> Callable[[], None]:
        """Call ``fn`` for every event, after the state was updated; returns the unsubscriber."""
        if fn not in self._listeners:
            self._listeners = (*self._listeners, fn)

        def unsubscribe() -> None:
            self._listeners = tuple(f for f in self._listeners if f != fn)

        return unsubscribe

    # -- state setters ------------------------------------------------------------------------

    def set_system_prompt(self, value: str) -> None:
        self._state.system_prompt = value

    def set_model(self, model: Model) -> None:
        self._state.model = model

    def set_thinking_level(self, level: ThinkingLevel) -> None:
        self._state.thinking_level = ThinkingLevel(level)

    def set_tools(self, tools: list[AgentTool]) -> None:
        self._state.tools = list(tools)

    def set_steering_mode(self, mode: str) -> None:
        self._steering_mode = mode or DEFAULT_MODE

    def get_steering_mode(self) -> str:
        return self._steering_mode

    def set_follow_up_mode(self, mode: str) -> None:
        self._follow_up_mode = mode or DEFAULT_MODE

    def get_follow_up_mode(self) -> str:
        return self._follow_up_mode

    def replace_messages(self, messages: list[AgentMessage]) -> None:
        self._state.messages = list(messages)

    def append_message(self, message: AgentMessage) -> None:
        self._state.messages = [*self._state.messages, message]

    # -- queues ---------------------------------------------------------------------------------

    def steer(self, message: AgentMessage) -> None:
        """Queue a message for the running turn's end (or the next run's first turn)."""
        self._enqueue(self._steering_queue, message)

    def follow_up(self, message: AgentMessage) -> None:
        """Queue a message to send once the agent would otherwise stop."""
        self._enqueue(self._follow_up_queue, message)

    def _enqueue(self, queue: list[AgentMessage], message: AgentMessage) -> None:
        run = self._run
        if run is not None and not on_loop(run.loop):
            try:
                run.loop.call_soon_threadsafe(queue.append, message)
                return
            except RuntimeError:  # that loop is closed: the run is gone
                pass
        queue.append(message)

    def clear_steering_queue(self) -> None:
        self._steering_queue.clear()

    def clear_follow_up_queue(self) -> None:
        self._follow_up_queue.clear()

    def clear_all_queues(self) -> None:
        self.clear_steering_queue()
        self.clear_follow_up_queue()

    def clear_messages(self) -> None:
        self._detach_run()
        self._state.messages = []

    def reset(self) -> None:
        """Clear the conversation and queues; keep system prompt, model, tools, thinking level."""
        self._detach_run()
        state = self._state
        state.messages = []
        state.is_streaming = False
        state.stream_message = None
        state.pending_tool_calls = set()
        state.error = None
        self.clear_all_queues()

    def _detach_run(self) -> None:
        run = self._run
        if run is not None:
            run.detached = True
            abort_run(run)

    # -- runs ---------------------------------------------------------------------------------
    map = agent_map  # ``await agent.map(inputs, ...)``: a batch over inputs (docs/batch.md)

    def abort(self) -> None:
        """Stop the current run (docs/events.md#abort); a no-op when idle. Safe from any thread."""
        run = self._run
        if run is not None:
            abort_run(run)

    async def wait_for_idle(self) -> None:
        """Return once the current run, if any, has finished, cleanup included."""
        run = self._run
        if run is None:
            return
        if run.task is not None and on_loop(run.loop):
            await asyncio.wait({run.task})
        else:
            await asyncio.to_thread(run.finished.wait)

    async def prompt(
        self, input: PromptInput, images: Images = None, *, options: RunOptions | None = None
    ) -> AgentMessage:
        """Run the loop on ``input``; return the last assistant message of this run.

        ``options`` change settings for this run only (the Agent keeps its own).
        """
        run = self._begin_run(_BUSY_PROMPT, normalize_input(input, images), options=options)
        return await self._complete(run)

    async def prompt_text(
        self, input: PromptInput, images: Images = None, *, options: RunOptions | None = None
    ) -> str:
        """The reply's text; raises :class:`AgentRunError` when the run ended in an error.

        A stopped run (``abort()``) is not an error: its partial text is returned.
        """
        reported = REPORTED_BY_CALLER.set(True)  # the exception carries it: no log line too
        try:
            reply = await self.prompt(input, images, options=options)
        finally:
            REPORTED_BY_CALLER.reset(reported)
        if isinstance(reply, AssistantMessage) and reply.stop_reason == "error":
            raise AgentRunError(reply, self._run_model(options))
        return extract_text(reply)

    async def continue_(self, *, options: RunOptions | None = None) -> AgentMessage:
        """Run the loop from the current history, without a new message."""
        run = self._begin_run(_BUSY_CONTINUE, None, options=options)
        return await self._complete(run)

    async def stream(
        self, input: PromptInput, images: Images = None, *, options: RunOptions | None = None
    ) -> AsyncGenerator[AgentEvent, None]:
        """The events of a ``prompt()`` run, as listeners get them. Closing it early aborts."""
        prompts = normalize_input(input, images)
        run = self._begin_run(_BUSY_PROMPT, prompts, outbox=True, options=options)
        async with aclosing(run_events(run)) as events:
            async for event in events:
                yield event

    async def stream_text(
        self, input: PromptInput, images: Images = None, *, options: RunOptions | None = None
    ) -> AsyncGenerator[str, None]:
        """The reply's text as it streams: each ``text_delta``; from a provider that sends no
        deltas, each text block's full text at its ``text_end``."""
        async with aclosing(text_pieces(self.stream(input, images, options=options))) as pieces:
            async for piece in pieces:
                yield piece

    def _run_model(self, options: RunOptions | None) -> Model | None:
        return self._state.model if options is None else pick(options.model, self._state.model)

    def _begin_run(
        self,
        busy_message: str,
        prompts: list[AgentMessage] | None,
        outbox: bool = False,
        options: RunOptions | None = None,
    ) -> Run:
        """Claim the Agent for a run on the current loop and start the run task."""
        loop = asyncio.get_running_loop()
        state = self._state
        options = check_options(options) or RunOptions()
        model = self._run_model(options)
        with self._lock:
            if self._run is not None:
                raise RuntimeError(busy_message)
            if not model:
                raise RuntimeError("No model configured")
            if prompts is None:
                if not state.messages:
                    raise RuntimeError("No messages to continue from")
                role = getattr(state.messages[-1], "role", None)
                if role == "assistant":
                    raise RuntimeError(f"Cannot continue from message role: {role}")
            run = Run(loop)
            self._run = run
        try:
            if outbox:
                run.outbox = deque()
            context = AgentContext(
                system_prompt=pick(options.system_prompt, state.system_prompt),
                messages=list(state.messages),
                tools=pick(options.tools, state.tools),
            )
            config = self._loop_config(model, options)
            run.model = model
            state.is_streaming = True
            state.stream_message = None
            state.error = None
            # The loop emits straight into the dispatcher: state first, then the listeners.
            emit = make_dispatcher(self, run)
            body = open_run(prompts or [], context, config, run.signal, emit, self.stream_fn)
            run.task = start_run(self._drive(run, body))
        except BaseException:
            # Nothing started: release the Agent so the next prompt() is not "already processing".
            state.is_streaming = False
            with self._lock:
                self._run = None
            raise
        return run

    async def _drive(self, run: Run, body: Any) -> None:
        try:
            await body
            failed = _final_error(run.new_messages)
            if failed is not None:
                log_run_error(failed, run.model)
        finally:
            if not run.detached:
                state = self._state
                state.is_streaming = False
                state.stream_message = None
                state.pending_tool_calls = set()
            with self._lock:
                if self._run is run:
                    self._run = None
            run.finished.set()
            run.wake()

    async def _complete(self, run: Run) -> AgentMessage:
        task = run.task
        assert task is not None
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # Cancelling the task awaiting prompt() aborts the run, completes it, then propagates.
            abort_run(run)
            await asyncio.wait({task})
            raise
        for message in reversed(run.new_messages):
            if isinstance(message, AssistantMessage):
                return message
        raise RuntimeError("No assistant message produced")

    def _loop_config(self, model: Model, options: RunOptions | None = None) -> AgentLoopConfig:
        """The Agent's settings for one run, with ``options``' set fields on top."""
        o = options or RunOptions()
        state = self._state
        caching = pick(o.enable_prompt_caching, self.enable_prompt_caching)
        return AgentLoopConfig(
            model=model,
            convert_to_llm=self.convert_to_llm or default_convert_to_llm,
            transform_context=self._transform(caching),
            get_api_key=self.get_api_key,
            get_steering_messages=self._take_steering,
            get_follow_up_messages=self._take_follow_ups,
            before_tool_call=pick(o.before_tool_call, self.before_tool_call),
            after_tool_call=pick(o.after_tool_call, self.after_tool_call),
            should_stop_after_turn=self.should_stop_after_turn,
            temperature=pick(o.temperature, self.temperature),
            max_tokens=pick(o.max_tokens, self.max_tokens),
            session_id=pick(o.session_id, self._session_id),
            thinking_level=pick(o.thinking_level, state.thinking_level),
            max_turns=pick(o.max_turns, self.max_turns),
        )

    def _transform(self, prompt_caching: bool) -> TransformContextFn | None:
        user_transform = self.transform_context
        if not prompt_caching:
            return user_transform

        async def cached_then_user(
            messages: list[AgentMessage], signal: asyncio.Event | None
        ) -> list[AgentMessage]:
            marked = await add_cache_breakpoints(messages, signal)
            if user_transform is None:
                return marked
            return await maybe_await(user_transform(marked, signal))

        return cached_then_user

    async def _take_steering(self) -> list[AgentMessage]:
        return queue_take(self._steering_queue, self._steering_mode)

    async def _take_follow_ups(self) -> list[AgentMessage]:
        return queue_take(self._follow_up_queue, self._follow_up_mode)
