"""The row runner: one row end to end on fresh Agents, and ``run_rows`` over a block of rows.

This is the part a worker runs (the local engine in this process, a Ray worker elsewhere): it
knows nothing of progress, budget or the cache, which the driver owns (``_engine.py``). It reports
through callbacks: ``on_start(index, row)`` when a row is scheduled, ``on_usage(index, tokens,
cost)`` after every finished turn, ``on_row(BatchRow)`` when a row is over.

A row: render its prompt; per attempt build a fresh Agent from the :class:`AgentConfig`, whose
stream function passes the batch's :class:`RateLimiter` before every request and caps the Rust
core's own retries so that core retries and row attempts together stay within ``max_attempts``;
``prompt()``; with an ``output_type`` parse and validate the answer, with one repair turn on the
same Agent. A transient failure (connection, timeout, 408/409/425/429/5xx) is retried after an
exponential back-off with jitter on a fresh Agent; anything else is the row's error. The engine
adds no per-token work: a row's streams deliver only their start, retries and end (see
:data:`ENDS_ONLY`), and its listener looks at each event's type once (a ``retry`` update slows the
batch after a 429, a ``message_end`` counts the turn's usage).

While rows run, the garbage collector's first threshold is raised to :data:`GC_THRESHOLD` (see
:func:`gc_relief`): hundreds of rows in flight keep enough objects alive that the default
(700 allocations) makes collection a sixth of the batch's CPU.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tinyagent._run_errors import REPORTED_BY_CALLER
from tinyagent.agent_types import AgentEvent, AssistantMessage, Model, TextContent

from ._config import AgentConfig
from ._limits import RateLimiter, backoff_delay
from ._output import OutputSpec
from ._result import BatchRow, add_usage, zero_usage
from ._rows import PromptError, PromptSpec

__all__ = ["ENDS_ONLY", "GC_THRESHOLD", "RowSettings", "gc_relief", "is_transient", "run_row", "run_rows"]

#: the Rust core's retries when neither the model nor the call sets ``max_retries``
CORE_DEFAULT_RETRIES = 2

#: The garbage collector's first threshold while rows run (``None``: leave it alone). Rows keep
#: their objects alive for the seconds a model takes, so at 700 most of them survive into the
#: older generations and every full collection walks every row in flight; at 50,000 most of a
#: row's objects are freed by reference counting before a collection comes (bench/README.md).
GC_THRESHOLD: int | None = 50_000

#: Whether a row's streams deliver only the events that open, retry or end them (``False``: every
#: token, as a notebook run gets them). Nobody reads a row's tokens as they come, so they stay in
#: the core: no wake-up, drain or event object per token, ~27 events fewer per request for a row
#: of a tool call and a 40-token answer (bench/README.md).
ENDS_ONLY = True

_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, ...] | None = None

OnRow = Callable[[BatchRow], None]
OnStart = Callable[[int, Any], None]
OnUsage = Callable[[int, int, float], None]

_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_PROVIDER_CODE = re.compile(r"\bprovider error (\d{3})\b")
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
_TRANSIENT_TEXT = re.compile(
    r"connection to \S+ failed|connect timeout|no response from|stream idle for|"
    r"stream interrupted|stream ended before completion|error sending request|"
    r"connection (?:reset|refused|closed|aborted)|timed out|overloaded|rate limit",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class RowSettings:
    """What every row of a batch shares (picklable when ``prompt`` and ``output_type`` are)."""

    prompt: PromptSpec = dataclasses.field(default_factory=lambda: PromptSpec(None))
    output: OutputSpec | None = None
    max_attempts: int = 3
    concurrency: int = 32
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    keep_messages: bool = False
    backoff_base: float = 0.5  # seconds before the second attempt; doubled per attempt
    backoff_cap: float = 8.0

    def limiter(self) -> RateLimiter:
        return RateLimiter(self.requests_per_minute, self.tokens_per_minute)


def is_transient(error: str) -> bool:
    """Whether a failed run's error message is worth another attempt."""
    status = _HTTP_STATUS.search(error) or _PROVIDER_CODE.search(error)
    if status is not None:
        code = int(status.group(1))
        return code in _TRANSIENT_STATUS or code >= 500
    return _TRANSIENT_TEXT.search(error) is not None


def _is_rate_limit(error: str) -> bool:
    return bool(re.search(r"\b429\b|rate limit", error, re.IGNORECASE))


@contextlib.contextmanager
def gc_relief() -> Iterator[None]:
    """Raise ``gc``'s first threshold to :data:`GC_THRESHOLD` while the block runs.

    Nested and concurrent uses share one change; the last one out puts the thresholds back,
    unless something else changed them meanwhile (then they are left as that code set them).
    A threshold already above ``GC_THRESHOLD``, or ``gc`` disabled, is left as it is.
    """
    global _gc_users, _gc_saved
    target = GC_THRESHOLD
    with _gc_lock:
        _gc_users += 1
        if _gc_users == 1 and target is not None and gc.isenabled():
            saved = gc.get_threshold()
            if 0 < saved[0] < target:
                _gc_saved = saved
                gc.set_threshold(target, *saved[1:])
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_saved is not None:
                before, _gc_saved = _gc_saved, None
                current = gc.get_threshold()
                if target is not None and current == (target, *before[1:]):
                    gc.set_threshold(*before)


async def run_rows(
    config: AgentConfig,
    rows: Iterable[tuple[int, Any]],
    settings: RowSettings,
    on_row: OnRow,
    *,
    on_start: OnStart | None = None,
    on_usage: OnUsage | None = None,
    limiter: RateLimiter | None = None,
) -> None:
    """Run ``(index, row)`` pairs with at most ``settings.concurrency`` in flight, pulling the
    next pair only when a slot is free; ``on_row`` gets each finished row (in finishing order).

    Cancelled (Stop, interrupt): every row in flight is cancelled and awaited, rows that had
    finished anyway are still reported, then the cancellation propagates.
    """
    with gc_relief():
        await _run_rows(config, rows, settings, on_row, on_start, on_usage, limiter)


async def _run_rows(
    config: AgentConfig,
    rows: Iterable[tuple[int, Any]],
    settings: RowSettings,
    on_row: OnRow,
    on_start: OnStart | None,
    on_usage: OnUsage | None,
    limiter: RateLimiter | None,
) -> None:
    if limiter is None:
        limiter = settings.limiter()
    iterator = iter(rows)
    running: dict[asyncio.Task[BatchRow], tuple[int, Any]] = {}
    finished: collections.deque[asyncio.Task[BatchRow]] = collections.deque()
    wake = asyncio.Event()

    def on_done(task: asyncio.Task[BatchRow]) -> None:
        finished.append(task)
        wake.set()

    def report(task: asyncio.Task[BatchRow]) -> None:
        index, row = running.pop(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            on_row(task.result())
        else:  # run_row turns failures into row errors; this is a bug, kept to its row
            on_row(BatchRow(index, row, error=f"internal error: {type(error).__name__}: {error}"))

    more = True
    try:
        while True:
            while more and len(running) < settings.concurrency:
                item = next(iterator, None)
                if item is None:
                    more = False
                    break
                index, row = item
                if on_start is not None:
                    on_start(index, row)
                task = asyncio.ensure_future(
                    run_row(config, index, row, settings, limiter, on_usage)
                )
                running[task] = (index, row)
                task.add_done_callback(on_done)
            if not running:
                return
            while not finished:
                wake.clear()
                await wake.wait()
            while finished:
                report(finished.popleft())
    finally:
        if running:
            for task in running:
                task.cancel()
            await asyncio.wait(list(running))
            for task in list(running):
                report(task)


async def run_row(
    config: AgentConfig,
    index: int,
    row: Any,
    settings: RowSettings,
    limiter: RateLimiter,
    on_usage: OnUsage | None = None,
) -> BatchRow:
    """One row, all its attempts; never raises for the row's own failures."""
    started = time.monotonic()
    attempt = _Row(config, index, settings, limiter, on_usage)
    reported = REPORTED_BY_CALLER.set(True)  # the BatchResult reports row errors, not the log
    try:
        output, error = await attempt.run(row)
    except Exception as exc:
        output, error = None, f"{type(exc).__name__}: {exc}"
    finally:
        REPORTED_BY_CALLER.reset(reported)
    return BatchRow(
        index=index,
        input=row,
        output=output,
        error=error,
        attempts=attempt.attempts,
        usage=attempt.usage,
        cost=attempt.cost,
        duration=time.monotonic() - started,
        messages=attempt.messages if settings.keep_messages else None,
    )


class _Row:
    """A row's attempts: the gated stream function, and the listener of its Agents."""

    def __init__(
        self,
        config: AgentConfig,
        index: int,
        settings: RowSettings,
        limiter: RateLimiter,
        on_usage: OnUsage | None,
    ) -> None:
        self.config = config
        self.index = index
        self.settings = settings
        self.limiter = limiter
        self.on_usage = on_usage
        self.inner = config.stream_fn
        self.attempts = 0  # requests that may fail: row attempts plus the core's own retries
        self.usage = zero_usage()
        self.cost = 0.0
        self.messages: list[Any] | None = None

    async def stream_fn(self, model: Model, context: Any, options: Any) -> Any:
        await self.limiter.acquire()
        left = max(0, self.settings.max_attempts - self.attempts)
        own = getattr(model, "max_retries", None)
        retries = min(CORE_DEFAULT_RETRIES if own is None else own, left)
        if options.max_retries is None or options.max_retries > retries:
            options.max_retries = retries  # the loop builds these options for this call only
        inner = self.inner
        if inner is None:
            from tinyagent.agent_loop import stream_simple

            inner = stream_simple
        response = await inner(model, context, options)
        if ENDS_ONLY:
            ends_only = getattr(response, "deliver_ends_only", None)
            if ends_only is not None:
                ends_only()
        return response

    def __call__(self, event: AgentEvent) -> None:
        kind = event.type
        if kind == "message_update":
            inner = event.assistant_message_event  # type: ignore[union-attr]
            if inner is not None and inner.type == "retry":
                self.attempts += 1
                if inner.reason and _is_rate_limit(inner.reason):
                    self.limiter.pause(inner.delay if inner.delay else 1.0)
        elif kind == "message_end":
            message = event.message  # type: ignore[union-attr]
            if isinstance(message, AssistantMessage):
                tokens, cost = add_usage(self.usage, message.usage)
                self.cost += cost
                self.limiter.record_tokens(tokens)
                if self.on_usage is not None:
                    self.on_usage(self.index, tokens, cost)

    async def run(self, row: Any) -> tuple[Any, str | None]:
        settings = self.settings
        try:
            text = settings.prompt.render(row)
        except PromptError as exc:
            return None, f"prompt: {exc}"
        output = settings.output
        if output is not None:
            text += output.instruction()
        while True:
            self.attempts += 1
            agent = self.config.new_agent(stream_fn=self.stream_fn)
            agent.subscribe(self)
            value, error = await self._attempt(agent, text, output)
            if settings.keep_messages:
                self.messages = list(agent.state.messages)
            if error is None:
                return value, None
            if not is_transient(error) or self.attempts >= settings.max_attempts:
                return None, error
            delay = backoff_delay(self.attempts, settings.backoff_base, settings.backoff_cap)
            if _is_rate_limit(error):
                self.limiter.pause(delay)  # the core's retries are spent: slow the whole batch
            await asyncio.sleep(delay)

    async def _attempt(
        self, agent: Any, text: str, output: OutputSpec | None
    ) -> tuple[Any, str | None]:
        reply = await agent.prompt(text)
        error = _failure(reply)
        if error is not None:
            return None, error
        if output is None:
            return _text(reply), None
        value, problems = output.parse(_text(reply))
        if problems is None:
            return value, None
        reply = await agent.prompt(output.repair_prompt(problems))  # one repair turn
        error = _failure(reply)
        if error is not None:
            return None, error
        value, problems = output.parse(_text(reply))
        if problems is None:
            return value, None
        return None, f"output did not match {output.name} after a repair turn:\n{problems}"


def _failure(reply: Any) -> str | None:
    if not isinstance(reply, AssistantMessage):
        return "the run produced no assistant reply"
    if reply.stop_reason == "error":
        return reply.error_message or "the run ended in an error"
    if reply.stop_reason == "aborted":
        return reply.error_message or "the run was aborted"
    return None


def _text(message: AssistantMessage) -> str:
    return "".join(b.text for b in message.content if isinstance(b, TextContent) and b.text)
