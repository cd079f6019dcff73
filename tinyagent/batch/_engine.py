"""The driver of a batch: what to run, when to stop, and what the person sees.

:class:`Engine` takes the rows lazily from the input (``_rows.RowSource``), answers cached rows
from the resume cache without sending anything, refuses new rows once the budget or
``max_failures`` is reached, and hands the rest to an *executor* — ``run_rows`` here, the same
function on Ray workers for ``backend="ray"`` — which pulls the next row only when one of its
``concurrency`` slots is free. It owns the :class:`ProgressCounts`, the progress calls, the Stop
callback and the interrupt, and builds the :class:`BatchResult`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ._cache import ResultCache
from ._config import AgentConfig
from ._limits import Budget
from ._output import OutputSpec
from ._progress import ProgressCounts, make_progress
from ._result import NOT_RUN, BatchResult, BatchRow
from ._rows import PromptSpec, RowSource, row_key
from ._runner import RowSettings, run_rows

__all__ = ["BatchOptions", "Engine", "Executor"]

logger = logging.getLogger("tinyagent.batch")

#: ``run_rows``' signature: ``(config, rows, settings, on_row, *, on_start, on_usage)``
Executor = Callable[..., Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """The options of ``run_batch`` / ``arun_batch`` / ``Agent.map``, checked."""

    prompt: Any = None
    output_type: Any = None
    concurrency: int = 32
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_attempts: int = 3
    max_failures: int | None = None
    budget: Any = None
    cache: Any = None
    backend: str = "local"
    progress: Any = True
    keep_messages: bool = False

    def __post_init__(self) -> None:
        _positive_int("concurrency", self.concurrency)
        _positive_int("max_attempts", self.max_attempts)
        if self.max_failures is not None:
            _positive_int("max_failures", self.max_failures)
        Budget.of(self.budget)  # raises on a bad value
        if self.backend not in ("local", "ray"):
            raise ValueError(f"backend must be 'local' or 'ray', got {self.backend!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


@dataclasses.dataclass
class _Running:
    row: Any
    key: str | None
    started: bool = False
    tokens: int = 0
    cost: float = 0.0


class Engine:
    """One batch. ``await engine.run()`` returns the :class:`BatchResult`; ``stop()`` (any
    thread) ends it early with ``stopped="stopped"``."""

    def __init__(
        self,
        agent: Any,
        inputs: Any,
        options: BatchOptions,
        executor: Executor = run_rows,
    ) -> None:
        config = agent if isinstance(agent, AgentConfig) else AgentConfig.from_agent(agent)
        output = OutputSpec(options.output_type) if options.output_type is not None else None
        if output is not None:
            config = config.replace(model=output.request_model(config.model))
        self.config = config
        self.options = options
        self.executor = executor
        self.settings = RowSettings(
            prompt=PromptSpec(options.prompt),
            output=output,
            max_attempts=options.max_attempts,
            concurrency=options.concurrency,
            requests_per_minute=options.requests_per_minute,
            tokens_per_minute=options.tokens_per_minute,
            keep_messages=options.keep_messages,
        )
        self.budget = Budget.of(options.budget)
        self.fingerprint = config.fingerprint(output=output.schema if output else None)
        self.source = RowSource(inputs)
        self.counts = ProgressCounts(total=self.source.total)
        self.rows: dict[int, BatchRow] = {}
        self.running: dict[int, _Running] = {}
        self.stopped: str | None = None
        self.cache: ResultCache | None = None
        self._progress: Any = None
        self._started = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Future[None] | None = None
        self._stop_reason: str | None = None
        self._result: BatchResult | None = None

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> BatchResult:
        self._loop = asyncio.get_running_loop()
        first = self.source.peek()
        if first is not None:  # a template key the rows lack fails here, before any request
            self.settings.prompt.render(first[1])
        if self.options.cache is not None:
            self.cache = ResultCache(self.options.cache)
        self._started = time.monotonic()
        self._progress = make_progress(self.options.progress)
        self._call_progress("start", self.counts)
        if self._progress is not None:
            self._call_progress("on_stop", self.stop)
        me = asyncio.current_task()
        try:
            self._task = asyncio.ensure_future(
                self.executor(
                    self.config,
                    self._schedule(),
                    self.settings,
                    self._on_row,
                    on_start=self._on_start,
                    on_usage=self._on_usage,
                )
            )
            await self._task
        except asyncio.CancelledError:
            if me is not None and me.cancelling():
                me.uncancel()  # the interrupt is answered: the partial result is returned
                self._halt("interrupted")
            elif self._stop_reason is not None:
                self._halt(self._stop_reason)
            else:
                raise
        except KeyboardInterrupt:
            self._halt("interrupted")
            await self._cancel_executor()
        finally:
            if self.cache is not None:
                self.cache.close()
        return self.result()

    async def _cancel_executor(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    def stop(self, reason: str = "stopped") -> None:
        """End the batch: rows in flight are cancelled; callable from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._stop_now, reason)
        except RuntimeError:  # the loop closed meanwhile: the batch is over
            pass

    def _stop_now(self, reason: str) -> None:
        if self._stop_reason is None and self._result is None:
            self._stop_reason = reason
            if self._task is not None and not self._task.done():
                self._task.cancel()

    def _halt(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason

    def _gate(self) -> str | None:
        """Why no new row may start now, if so."""
        if self._stop_reason is not None:
            return self._stop_reason
        counts = self.counts
        if self.budget is not None and self.budget.reached(counts.tokens, counts.cost):
            return "budget"
        limit = self.options.max_failures
        if limit is not None and counts.failed >= limit:
            return "max_failures"
        return None

    def _schedule(self) -> Iterator[tuple[int, Any]]:
        """The rows the executor runs, pulled one at a time as its slots free up."""
        for index, row in self.source:
            key = self._key(row) if self.cache is not None else None
            if key is not None and self._answer_from_cache(index, row, key):
                continue
            reason = self._gate()
            if reason is not None:
                self._halt(reason)
                self._not_run(index, row, reason)
                return
            self.running[index] = _Running(row, key)
            yield index, row
        self.counts.total = self.source.pulled

    def _key(self, row: Any) -> str | None:
        try:
            return row_key(self.fingerprint, self.settings.prompt.render(row))
        except ValueError:
            return None  # the runner reports the prompt error

    def _answer_from_cache(self, index: int, row: Any, key: str) -> bool:
        assert self.cache is not None
        stored = self.cache.get(key)
        if stored is None:
            return False
        kind, text = stored
        output: Any = text
        if kind == "json":
            spec = self.settings.output
            if spec is None:
                return False
            try:
                output = spec.load(text)
            except ValueError:
                return False
        self.rows[index] = BatchRow(index, row, output=output, cached=True)
        self.counts.done += 1
        self.counts.cached += 1
        self._update()
        return True

    # -- executor callbacks -----------------------------------------------------------------------

    def _on_start(self, index: int, row: Any) -> None:
        entry = self.running.setdefault(index, _Running(row, None))
        if not entry.started:
            entry.started = True
            self.counts.running += 1
        self._update()

    def _on_usage(self, index: int, tokens: int, cost: float) -> None:
        entry = self.running.get(index)
        if entry is not None:
            entry.tokens += tokens
            entry.cost += cost
        self.counts.tokens += tokens
        self.counts.cost += cost
        self._update()

    def _on_row(self, row: BatchRow) -> None:
        entry = self.running.pop(row.index, None)
        counts = self.counts
        if entry is not None:
            counts.running -= entry.started
            # usage the executor did not report turn by turn (a worker in another process)
            counts.tokens += max(0, row.usage.get("total_tokens", 0) - entry.tokens)
            counts.cost += max(0.0, row.cost - entry.cost)
        if row.error is None:
            counts.done += 1
            if self.cache is not None and entry is not None and entry.key is not None:
                self._store(entry.key, row)
        elif row.error.startswith(NOT_RUN):
            counts.not_run += 1
        else:
            counts.failed += 1
        self.rows[row.index] = row
        self._update()

    def _store(self, key: str, row: BatchRow) -> None:
        assert self.cache is not None
        spec = self.settings.output
        if spec is not None:
            kind, text = "json", spec.dump(row.output)
        else:
            kind, text = "text", str(row.output)
        try:
            self.cache.put(key, kind, text, row.usage, row.cost)
        except Exception:  # a full disk or a locked file costs the resume, not the batch
            logger.warning("batch cache: could not store row %d", row.index, exc_info=True)

    def _not_run(self, index: int, row: Any, reason: str, entry: _Running | None = None) -> None:
        result = BatchRow(index, row, error=NOT_RUN + reason)
        if entry is not None:
            result.cost = entry.cost
            result.usage["total_tokens"] = entry.tokens
        self.rows[index] = result
        self.counts.not_run += 1

    # -- the end ----------------------------------------------------------------------------------

    def result(self) -> BatchResult:
        """The BatchResult (once the batch is over; after an escaped interrupt, the partial one)."""
        if self._result is not None:
            return self._result
        if self.running or (self.stopped is None and not self.source.exhausted):
            self._halt(self._stop_reason or "interrupted")
        reason = self.stopped
        if reason is not None:
            for index, entry in list(self.running.items()):
                self._not_run(index, entry.row, reason, entry)
            self.counts.running = 0
            self.running.clear()
            if self.source.sized:  # a list or DataFrame: every row gets its line
                for index, row in self.source:
                    self._not_run(index, row, reason)
        rows = [self.rows[i] for i in sorted(self.rows)]
        duration = time.monotonic() - self._started
        self.counts.elapsed = duration
        self._call_progress("finish", self.counts, reason)
        self._result = BatchResult(
            rows, stopped=reason, duration=duration, frame_index=self.source.frame_index
        )
        return self._result

    # -- progress ---------------------------------------------------------------------------------

    def _update(self) -> None:
        if self._progress is not None:
            self.counts.elapsed = time.monotonic() - self._started
            self._call_progress("update", self.counts)

    def _call_progress(self, name: str, *args: Any) -> None:
        progress = self._progress
        if progress is None:
            return
        try:
            getattr(progress, name)(*args)
        except Exception:  # a broken display never stops the batch
            logger.warning("batch progress %s() failed; progress is off", name, exc_info=True)
            self._progress = None
