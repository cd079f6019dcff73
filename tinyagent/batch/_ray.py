"""``backend="ray"``: the local engine's driver, with the rows run on Ray workers.

The :class:`~tinyagent.batch._engine.Engine` drives as in local mode, with :class:`RayExecutor` in
place of ``run_rows``: Ray actors hold the agent (pickled once, checked before Ray is touched) and
get blocks of rows as their share of ``concurrency`` frees up; each runs them with ``run_rows``
and streams every row's start, per-turn usage and result back. docs/batch.md#ray-backend
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from ._config import AgentConfig
from ._engine import BatchOptions, Engine
from ._pickle import NotPicklableError, check_picklable, pickle_error
from ._result import BatchResult, BatchRow
from ._runner import OnRow, OnStart, OnUsage, RowSettings, run_rows

__all__ = ["NotPicklableError", "RayExecutor", "RayOptions", "check_picklable", "run_ray"]

#: seconds the workers get to report what finished once their calls are cancelled
CANCEL_GRACE = 3.0
#: seconds a worker waits after an event for more to send with it (each send costs ~ms of CPU)
COALESCE = 0.01
#: seconds a worker's free slots wait for a block's worth before fewer rows are sent
LINGER = 0.02
#: times Ray restarts a worker whose process died (a crashing tool) within one batch
MAX_RESTARTS = 3
_LOAD_HINT = (
    "what your own modules define must be importable on every Ray worker (install the module "
    "there, or ray.init(runtime_env={'py_modules': [module]})); a notebook's or script's own "
    "functions travel by value"
)


def _ray() -> Any:
    return importlib.import_module("ray")


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """How a Ray batch is spread (docs/batch.md#ray-backend)."""

    workers: int | None = None  # Ray actors; default one per CPU of the cluster
    block_size: int | None = None  # rows per call at most; default a worker's whole share
    num_cpus: float = 1.0  # CPUs each worker reserves
    init: dict[str, Any] = dataclasses.field(default_factory=dict)  # ray.init(...) if not yet
    start_timeout: float = 120.0  # seconds for a worker to come up

    def __post_init__(self) -> None:
        for name in ("workers", "block_size"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"RayOptions.{name} must be an int >= 1, got {value!r}")


async def run_ray(
    agent: Any, inputs: Any, options: BatchOptions, ray: RayOptions | None = None
) -> BatchResult:
    """``run_batch(..., backend="ray")``: the local engine with :class:`RayExecutor`."""
    executor = RayExecutor(ray)
    engine = Engine(agent, inputs, options, executor=executor)
    executor.payload = check_picklable(engine.config, engine.settings)  # before anything starts
    try:
        return await engine.run()
    finally:
        executor.close()


def _init_ray(options: RayOptions) -> None:
    """Connect to ``init["address"]``/``RAY_ADDRESS``, or start a local Ray (up to 3 tries)."""
    ray, kwargs = _ray(), dict(options.init)
    address = kwargs.get("address") or os.environ.get("RAY_ADDRESS")
    if not address:
        kwargs.setdefault("include_dashboard", False)
        kwargs.setdefault("num_cpus", options.workers or os.cpu_count() or 1)
    for attempt in (1, 2, 3):
        try:
            ray.init(**kwargs)
            return
        except Exception as exc:
            if address or attempt == 3 or "timed out during startup" not in str(exc):
                raise
            ray.shutdown()


class _Worker:
    """One Ray actor of a batch (async: its blocks share one event loop and one limiter)."""

    def __init__(self, payload: bytes, share: float) -> None:
        self.error: str | None = None
        self.limiter: Any = None
        try:
            self.config, settings = importlib.import_module("ray.cloudpickle").loads(payload)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return
        rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
        self.settings: RowSettings = dataclasses.replace(
            settings, requests_per_minute=rpm and rpm * share, tokens_per_minute=tpm and tpm * share
        )

    def ready(self) -> tuple[int, str | None]:
        return os.getpid(), self.error

    async def run_block(self, rows: list[tuple[int, Any]]) -> AsyncIterator[list[Any]]:
        """Run ``rows`` at once (the driver never sends more than the free slots) and yield
        lists of events as they happen: ``("start", i)``, ``("usage", i, tokens, cost)``,
        ``("row", BatchRow)`` (its ``input`` left out: the driver has it)."""
        if self.limiter is None:
            self.limiter = self.settings.limiter()
        events: list[Any] = []
        wake = asyncio.Event()

        def push(event: Any) -> None:
            events.append(event)
            wake.set()

        settings = dataclasses.replace(self.settings, concurrency=max(1, len(rows)))
        task = asyncio.ensure_future(run_rows(
            self.config, rows, settings,
            lambda row: push(("row", dataclasses.replace(row, input=None))),
            on_start=lambda index, row: push(("start", index)),
            on_usage=lambda index, tokens, cost: push(("usage", index, tokens, cost)),
            limiter=self.limiter,
        ))  # fmt: skip
        task.add_done_callback(lambda _: wake.set())
        try:
            while not (task.done() and not events):
                await wake.wait()
                await asyncio.sleep(COALESCE)  # what else happens meanwhile goes along
                wake.clear()
                if events:
                    batch, events[:] = events[:], []
                    yield batch
            task.result()
        finally:
            if not task.done():  # cancelled (ray.cancel): end the rows in flight
                task.cancel()
                await asyncio.wait({task})


@functools.cache
def _worker_class() -> Any:
    return _ray().remote(_Worker)


@dataclasses.dataclass
class _Slot:
    actor: Any
    capacity: int  # rows this worker may have in flight
    free: int
    alive: bool = False  # up and taking rows
    watch: asyncio.Task[None] | None = None  # waiting for it to be up (starting, restarting)
    since: float = 0.0  # when its free slots last changed

    def release(self, rows: int) -> None:
        if rows and not self.free:
            self.since = time.monotonic()
        self.free += rows

    def wants(self, block_size: int, now: float) -> int:
        """Rows to send it now: a block once that many slots are free, fewer after LINGER."""
        full = self.free >= min(block_size, self.capacity)
        return (
            min(block_size, self.free) if self.alive and (full or now - self.since >= LINGER) else 0
        )


class RayExecutor:
    """The engine's executor for ``backend="ray"`` (``run_rows``' signature); ``close()`` kills
    its workers and shuts down the Ray it started."""

    def __init__(self, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()
        self.payload: bytes | None = None
        self.started_ray = False
        self._sigterm: Any = None
        self.slots: list[_Slot] = []
        self.block_size = 1
        self._calls: dict[asyncio.Task[None], Any] = {}  # consumer → its Ray stream
        self._wake = asyncio.Event()
        self._cancelling = False
        self._load_error: str | None = None
        self._on_row: OnRow = lambda row: None
        self._on_start: OnStart | None = None
        self._on_usage: OnUsage | None = None

    async def __call__(
        self,
        config: AgentConfig,
        rows: Iterable[tuple[int, Any]],
        settings: RowSettings,
        on_row: OnRow,
        *,
        on_start: OnStart | None = None,
        on_usage: OnUsage | None = None,
    ) -> None:
        if self.payload is None:
            self.payload = check_picklable(config, settings)
        self._on_row, self._on_start, self._on_usage = on_row, on_start, on_usage
        self._wake = asyncio.Event()
        try:
            self._start(settings.concurrency)
            await self._drive(iter(rows))
        except BaseException:
            await self._cancel_calls()
            raise

    def _start(self, concurrency: int) -> None:
        ray, options = _ray(), self.options
        if not ray.is_initialized():
            self._sigterm = signal.getsignal(signal.SIGTERM)  # ray.init sets its own
            _init_ray(options)
            self.started_ray = True
        workers = options.workers
        if workers is None:  # one per CPU of the cluster
            cpus = ray.cluster_resources().get("CPU", 1)
            workers = max(1, int(cpus // options.num_cpus)) if options.num_cpus > 0 else 1
        workers = min(workers, concurrency)
        shares = [concurrency // workers + (i < concurrency % workers) for i in range(workers)]
        self.block_size = options.block_size or shares[0]
        # the bytes themselves (not a ray.put reference), so that a restarted worker has them
        worker = _worker_class().options(num_cpus=options.num_cpus, max_restarts=MAX_RESTARTS)
        self.slots = [_Slot(worker.remote(self.payload, n / concurrency), n, n) for n in shares]
        for slot in self.slots:
            slot.watch = asyncio.ensure_future(self._wait_up(slot))

    async def _wait_up(self, slot: _Slot) -> None:
        """Until the worker answers (starting, or restarting after a crash), ``start_timeout``."""
        ray = _ray()  # a restarting actor is "unavailable" (Ray before 2.2x: an actor error)
        restarting = getattr(ray.exceptions, "ActorUnavailableError", ray.exceptions.RayActorError)
        deadline = time.monotonic() + self.options.start_timeout
        try:
            while time.monotonic() < deadline:
                try:
                    ref = slot.actor.ready.remote()
                    _pid, error = await asyncio.wait_for(ref, deadline - time.monotonic())
                except restarting:
                    await asyncio.sleep(0.2)
                    continue
                slot.alive, self._load_error = error is None, self._load_error or error
                return
        except (TimeoutError, ray.exceptions.RayError):
            pass  # never up, or dead for good: it stays out of the batch
        finally:
            slot.watch = None
            self._wake.set()

    def close(self) -> None:
        """Kill this batch's workers; shut Ray down if this batch started it."""
        ray = _ray()
        for slot in self.slots:
            if slot.watch is not None:
                slot.watch.cancel()
        if ray.is_initialized():
            for slot in self.slots:
                with contextlib.suppress(Exception):  # already gone
                    ray.kill(slot.actor, no_restart=True)
            if self.started_ray:
                ray.shutdown()
                if (
                    self._sigterm is not None
                    and threading.current_thread() is threading.main_thread()
                ):
                    signal.signal(signal.SIGTERM, self._sigterm)
        self.slots = []

    async def _drive(self, rows: Iterator[tuple[int, Any]]) -> None:
        more = True
        while True:
            if self._load_error is not None:
                error = f"the agent could not be loaded on a Ray worker: {self._load_error}"
                raise RuntimeError(f"{error}; {_LOAD_HINT}")
            if more:
                more = self._dispatch(rows)
            if not self._calls and not more:
                return
            if not self._calls and not any(s.alive or s.watch for s in self.slots):
                raise RuntimeError(
                    f"no Ray worker of this batch is up: none answered within "
                    f"{self.options.start_timeout:g} s, or they died (see Ray's logs)"
                )
            self._wake.clear()
            lingering = any(slot.free and slot.alive for slot in self.slots) and more
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), LINGER if lingering else None)
            for call in [call for call in self._calls if call.done()]:
                del self._calls[call]
                call.result()  # a bug of the consumer's own surfaces here

    def _dispatch(self, rows: Iterator[tuple[int, Any]]) -> bool:
        """Fill the workers' free slots, a block at a time; False once ``rows`` is over."""
        while True:
            now = time.monotonic()
            slot = max(self.slots, key=lambda s: s.wants(self.block_size, now))
            want = slot.wants(self.block_size, now)
            if not want:
                return True
            block: dict[int, Any] = {}
            for index, row in rows:  # the engine's cache, budget and max_failures gate each row
                block[index] = row
                if len(block) >= want:
                    break
            if block:
                self._submit(slot, block)
            if len(block) < want:
                return False

    def _submit(self, slot: _Slot, block: dict[int, Any]) -> None:
        method = slot.actor.run_block.options(num_returns="streaming")
        try:
            stream = method.remote(list(block.items()))
        except Exception:  # a row that does not pickle fails alone; the others go
            for index, row in list(block.items()):
                if (error := pickle_error(row)) is not None:
                    del block[index]
                    self._on_row(
                        BatchRow(index, row, error=f"row does not pickle for Ray: {error}")
                    )
            if not block:
                return
            stream = method.remote(list(block.items()))
        slot.free, slot.since = slot.free - len(block), time.monotonic()
        self._calls[asyncio.ensure_future(self._consume(slot, block, stream))] = stream

    async def _consume(self, slot: _Slot, block: dict[int, Any], stream: Any) -> None:
        ray, pending = _ray(), dict(block)
        try:
            async for ref in stream:
                for event in await ref:
                    if event[0] == "row":
                        row = event[1]
                        row.input = pending.pop(row.index, None)
                        slot.release(1)
                        self._on_row(row)
                    elif event[0] == "usage" and self._on_usage is not None:
                        self._on_usage(*event[1:])
                    elif event[0] == "start" and self._on_start is not None:
                        self._on_start(event[1], block[event[1]])
                self._wake.set()
            error = "the Ray worker ended its block without this row"
        except ray.exceptions.RayError as exc:
            if self._cancelling:
                return  # the rows not reported are "not run" (the engine says why)
            if isinstance(exc, ray.exceptions.RayActorError) and slot.watch is None:
                slot.alive, slot.watch = False, asyncio.ensure_future(self._wait_up(slot))
            error = f"Ray worker failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        finally:
            self._wake.set()
        slot.release(len(pending))
        for index, row in pending.items():
            self._on_row(BatchRow(index, row, error=error))

    async def _cancel_calls(self) -> None:
        """``ray.cancel`` the calls in flight; what finishes within ``CANCEL_GRACE`` counts."""
        self._cancelling = True
        ray = _ray()
        for stream in self._calls.values():
            with contextlib.suppress(Exception):  # it finished meanwhile
                ray.cancel(stream)
        if self._calls:
            _, late = await asyncio.wait(list(self._calls), timeout=CANCEL_GRACE)
            for call in late:
                call.cancel()
        self._calls.clear()
