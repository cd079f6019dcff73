"""``backend="ray"``: the local engine's driver with its rows run on Ray workers.

The driver is the local :class:`~tinyagent.batch._engine.Engine` unchanged — it pulls the rows
lazily, answers cached rows, owns progress, the budget, ``max_failures``, Stop and the interrupt,
and builds the :class:`BatchResult` — with :class:`RayExecutor` in place of the in-process
``run_rows``. The executor starts ``workers`` Ray actors (one per CPU of the cluster by default),
each holding the agent's configuration, unpickled once, and its own rate limiter. A worker runs
blocks of rows with the local row runner (``_runner.run_rows``) on its event loop and streams
each row's start, per-turn usage and result back as they happen.

Rows reach the workers only as slots free up: the driver gives a worker a block of
``block_size`` rows whenever it has that many of its ``concurrency / workers`` slots free, so
rows are taken from the input (and the budget and ``max_failures`` are checked) exactly when
the local engine would take them, at most ``concurrency`` rows are in flight, and a slow row
never holds a block's other slots. Cancelling the executor (Stop, the interrupt) cancels the
in-flight Ray calls (``ray.cancel``) before the actors are killed.

Everything a worker needs is pickled with cloudpickle before Ray is touched; what does not
pickle is named (:class:`NotPicklableError`): the tool, and the variable or attribute inside it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import io
import math
import os
import types
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from ._config import AgentConfig
from ._engine import BatchOptions, Engine
from ._result import BatchResult, BatchRow
from ._runner import OnRow, OnStart, OnUsage, RowSettings, run_rows

__all__ = ["NotPicklableError", "RayExecutor", "RayOptions", "check_picklable", "run_ray"]

#: seconds the workers get to report what finished once their calls are cancelled
CANCEL_GRACE = 3.0
_LOAD_HINT = (
    "tools, hooks and prompt functions from your own modules must be importable on every Ray "
    "worker (install the module there, or ray.init(runtime_env={'py_modules': [module]})); "
    "functions defined in the notebook or the script itself travel by value"
)


def _ray() -> Any:
    return importlib.import_module("ray")


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """How a Ray batch is spread.

    - ``workers``: Ray actors (default: the CPUs Ray has free, at least 1); together they keep at
      most ``concurrency`` rows in flight, ``ceil(concurrency / workers)`` each.
    - ``block_size``: rows per call to a worker (default a quarter of its slots, at least 1).
    - ``num_cpus``: CPUs each worker reserves in Ray (default 1).
    - ``address``: a cluster to connect to when Ray is not initialised yet; without one (and
      without ``RAY_ADDRESS``) a local Ray is started for the batch and shut down after it.
    - ``init``: more ``ray.init`` keyword arguments for that start.
    - ``start_timeout``: seconds for the workers to come up before the batch gives up.
    """

    workers: int | None = None
    block_size: int | None = None
    num_cpus: float = 1.0
    address: str | None = None
    init: dict[str, Any] = dataclasses.field(default_factory=dict)
    start_timeout: float = 120.0

    def __post_init__(self) -> None:
        for name in ("workers", "block_size"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"RayOptions.{name} must be an int >= 1, got {value!r}")

    @classmethod
    def of(cls, value: Any) -> RayOptions:
        if value is None:
            return cls()
        if isinstance(value, RayOptions):
            return value
        if isinstance(value, dict):
            return cls(**value)
        raise TypeError(f"ray options must be a RayOptions or a dict, got {type(value).__name__}")


async def run_ray(
    agent: Any, inputs: Any, options: BatchOptions, ray: RayOptions | dict[str, Any] | None = None
) -> BatchResult:
    """``run_batch(..., backend="ray")``: the local engine with :class:`RayExecutor`."""
    executor = RayExecutor(RayOptions.of(ray))
    engine = Engine(agent, inputs, options, executor=executor)
    executor.payload = check_picklable(engine.config, engine.settings)  # before anything starts
    try:
        return await engine.run()
    finally:
        executor.close()


# -- what must pickle ---------------------------------------------------------------------------


class NotPicklableError(TypeError):
    """Part of the agent (a tool, a hook, the prompt function) cannot be sent to Ray workers."""


def check_picklable(config: AgentConfig, settings: RowSettings) -> bytes:
    """The pickled ``(config, settings)`` the workers get; raises :class:`NotPicklableError`
    naming the first part that does not pickle and the object inside it that is why."""
    cloudpickle = importlib.import_module("ray.cloudpickle")
    try:
        blob: bytes = cloudpickle.dumps((config, settings))
        return blob
    except Exception as whole:
        for label, part in _parts(config, settings):
            try:
                cloudpickle.dumps(part)
            except Exception as exc:
                raise NotPicklableError(_explain(label, part, exc)) from exc
        raise NotPicklableError(
            f"backend='ray' could not pickle the agent: {type(whole).__name__}: {whole}"
        ) from whole


def _parts(config: AgentConfig, settings: RowSettings) -> Iterator[tuple[str, Any]]:
    for tool in config.tools:
        yield f"tool {tool.name!r}", tool
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name != "tools" and value is not None:
            yield f"the agent's {field.name}", value
    if callable(settings.prompt.prompt):
        yield "the prompt function", settings.prompt.prompt
    if settings.output is not None:
        yield "output_type", settings.output
    yield "the batch settings", settings


def _explain(label: str, part: Any, exc: Exception) -> str:
    path, leaf_error = _culprit(part, exc)
    where = (
        ": " + " → ".join(f"{step} ({_describe(value)})" for step, value in path) if path else ""
    )
    text = (
        f"backend='ray' pickles the agent to send it to the Ray workers, and {label} does not "
        f"pickle{where}: {type(leaf_error).__name__}: {leaf_error}"
    )
    if any(_is_shell(value) for _, value in path) or _is_shell(part):
        return text + (
            ". The notebook's kernel tools work on this kernel's variables and cannot run in "
            "another process: use backend='local' for them"
        )
    return text + (
        ". Make such objects inside the tool's function (or in an importable module) instead "
        "of capturing them, or use backend='local'"
    )


def _culprit(obj: Any, error: Exception) -> tuple[list[tuple[str, Any]], Exception]:
    """The chain of closure variables, globals, attributes or items from ``obj`` down to the
    innermost object that does not pickle, and that object's own error."""
    cloudpickle = importlib.import_module("ray.cloudpickle")
    path: list[tuple[str, Any]] = []
    seen = {id(obj)}
    while len(path) < 8 and not _is_shell(obj):
        for step, child in _children(obj):
            if id(child) in seen:
                continue
            seen.add(id(child))
            try:
                cloudpickle.dumps(child)
            except Exception as exc:
                path.append((step, child))
                obj, error = child, exc
                break
        else:
            break
    return path, error


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, types.MethodType):
        yield "bound to", obj.__self__
        yield "its function", obj.__func__
    elif isinstance(obj, functools.partial):
        yield "partial of", obj.func
        yield from ((f"argument {i}", v) for i, v in enumerate(obj.args))
        yield from ((f"argument `{k}`", v) for k, v in obj.keywords.items())
    elif isinstance(obj, types.FunctionType):
        if getattr(obj, "_tinyagent_threaded", False):  # a plain def run in a thread: its own
            yield from _children(getattr(obj, "__wrapped__", None))
            return
        code = obj.__code__
        for name, cell in zip(code.co_freevars, obj.__closure__ or (), strict=False):
            try:
                yield f"closes over `{name}`", cell.cell_contents
            except ValueError:  # an empty cell
                continue
        for name in sorted(_global_names(code) & obj.__globals__.keys()):
            yield f"uses the global `{name}`", obj.__globals__[name]
        yield from ((f"default {i}", v) for i, v in enumerate(obj.__defaults__ or ()))
        yield from ((f"attribute `{k}`", v) for k, v in vars(obj).items() if k != "__wrapped__")
    elif isinstance(obj, dict):
        yield from ((f"item {k!r}", v) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        yield from ((f"item {i}", v) for i, v in enumerate(obj))
    elif isinstance(obj, type):
        return
    else:
        fields = getattr(type(obj), "model_fields", None)  # pydantic
        if isinstance(fields, dict):
            yield from ((f"its {name}", getattr(obj, name, None)) for name in fields)
        elif dataclasses.is_dataclass(obj):
            yield from ((f"its {f.name}", getattr(obj, f.name)) for f in dataclasses.fields(obj))
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            yield from ((f"attribute `{k}`", v) for k, v in state.items())


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _is_shell(value: Any) -> bool:
    return any(
        cls.__name__ == "InteractiveShell" and cls.__module__.startswith("IPython")
        for cls in type(value).__mro__
    )


def _describe(value: Any) -> str:
    if _is_shell(value):
        return "the IPython shell of this notebook"
    if isinstance(value, io.IOBase):
        name = getattr(value, "name", None)
        return f"an open file {name!r}" if name else "an open file"
    if isinstance(value, types.FunctionType | types.MethodType):
        return f"function {value.__qualname__}"
    kind = type(value)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return f"a {name}"


def _init_ray(options: RayOptions) -> None:
    """Connect to ``options.address`` / ``RAY_ADDRESS``, or start a local Ray (tried twice: on
    a loaded machine Ray's own start can time out)."""
    ray = _ray()
    kwargs: dict[str, Any] = {"include_dashboard": False, **options.init}
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **kwargs)
        return
    kwargs.setdefault("num_cpus", options.workers or os.cpu_count() or 1)
    try:
        ray.init(**kwargs)
    except Exception as exc:
        if "timed out during startup" not in str(exc):
            raise
        ray.shutdown()
        ray.init(**kwargs)


# -- the worker ---------------------------------------------------------------------------------


class _Worker:
    """One Ray actor of a batch (async: its blocks share one event loop and one limiter)."""

    def __init__(self, payload: bytes, requests_share: float) -> None:
        self.error: str | None = None
        self.limiter: Any = None
        try:
            self.config, settings = importlib.import_module("ray.cloudpickle").loads(payload)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return
        rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
        self.settings: RowSettings = dataclasses.replace(
            settings,
            requests_per_minute=rpm * requests_share if rpm else None,
            tokens_per_minute=tpm * requests_share if tpm else None,
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

        def on_row(row: BatchRow) -> None:
            row.input = None
            push(("row", row))

        settings = dataclasses.replace(self.settings, concurrency=max(1, len(rows)))
        task = asyncio.ensure_future(run_rows(
            self.config, rows, settings, on_row,
            on_start=lambda index, row: push(("start", index)),
            on_usage=lambda index, tokens, cost: push(("usage", index, tokens, cost)),
            limiter=self.limiter,
        ))  # fmt: skip
        task.add_done_callback(lambda _: wake.set())
        try:
            while True:
                await wake.wait()
                wake.clear()
                if events:
                    batch = events[:]
                    del events[:]
                    yield batch
                if task.done() and not events:
                    break
            task.result()
        finally:
            if not task.done():  # cancelled (ray.cancel): end the rows in flight
                task.cancel()
                await asyncio.wait({task})


@functools.cache
def _worker_class() -> Any:
    return _ray().remote(_Worker)


# -- the driver side ----------------------------------------------------------------------------


@dataclasses.dataclass
class _Slot:
    actor: Any
    capacity: int
    free: int
    alive: bool = True


class RayExecutor:
    """The engine's executor for ``backend="ray"`` (``run_rows``' signature). ``payload`` is the
    pickled ``(config, settings)`` (``check_picklable``); ``close()`` kills the workers and shuts
    down the Ray it started."""

    def __init__(self, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()
        self.payload: bytes | None = None
        self.started_ray = False
        self.slots: list[_Slot] = []
        self.block_size = 1
        self._calls: dict[asyncio.Task[None], Any] = {}
        self._wake: asyncio.Event | None = None
        self._cancelling = False

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
        await self._start(settings.concurrency)
        self._wake = asyncio.Event()
        try:
            await self._drive(iter(rows), on_row, on_start, on_usage)
        except BaseException:
            await self._cancel_calls()
            raise

    # -- starting -------------------------------------------------------------------------------

    async def _start(self, concurrency: int) -> None:
        ray, options = _ray(), self.options
        if not ray.is_initialized():
            _init_ray(options)
            self.started_ray = True
        workers = options.workers
        if workers is None:  # one per free CPU
            free = ray.available_resources().get("CPU", 0)
            workers = max(1, int(free // options.num_cpus)) if options.num_cpus > 0 else 1
        workers = min(workers, concurrency)
        capacity = math.ceil(concurrency / workers)
        self.block_size = options.block_size or max(1, capacity // 4)
        payload = ray.put(self.payload)  # once for all the workers
        worker = _worker_class().options(num_cpus=options.num_cpus)
        self.slots = [
            _Slot(worker.remote(payload, 1 / workers), capacity, capacity) for _ in range(workers)
        ]
        waiting = asyncio.gather(*(slot.actor.ready.remote() for slot in self.slots))
        try:
            ready = await asyncio.wait_for(waiting, options.start_timeout)
        except TimeoutError:
            raise RuntimeError(
                f"the {workers} Ray workers of this batch did not start within "
                f"{options.start_timeout:g} s (each reserves {options.num_cpus:g} CPU; Ray has "
                f"{ray.available_resources().get('CPU', 0):g} free): pass fewer workers or a "
                "smaller num_cpus"
            ) from None
        except ray.exceptions.RayError as exc:
            raise RuntimeError(f"a Ray worker of this batch failed to start: {exc}") from exc
        for _pid, error in ready:
            if error is not None:
                raise RuntimeError(
                    f"the agent could not be loaded on a Ray worker: {error}; {_LOAD_HINT}"
                )

    def close(self) -> None:
        """Kill this batch's workers; shut Ray down if this batch started it."""
        ray = _ray()
        if ray.is_initialized():
            for slot in self.slots:
                try:
                    ray.kill(slot.actor, no_restart=True)
                except Exception:  # already gone
                    pass
            if self.started_ray:
                ray.shutdown()
        self.slots = []

    # -- running --------------------------------------------------------------------------------

    async def _drive(
        self,
        rows: Iterator[tuple[int, Any]],
        on_row: OnRow,
        on_start: OnStart | None,
        on_usage: OnUsage | None,
    ) -> None:
        assert self._wake is not None
        more = True
        while True:
            if more:
                more = self._dispatch(rows, on_row, on_start, on_usage)
            if not self._calls:
                if more and not any(slot.alive for slot in self.slots):
                    raise RuntimeError("every Ray worker of this batch died; see the rows' errors")
                return
            self._wake.clear()
            await self._wake.wait()
            for call in [c for c in self._calls if c.done()]:
                del self._calls[call]
                call.result()  # a consumer's own bug surfaces here

    def _dispatch(
        self,
        rows: Iterator[tuple[int, Any]],
        on_row: OnRow,
        on_start: OnStart | None,
        on_usage: OnUsage | None,
    ) -> bool:
        """Fill the workers' free slots, a block at a time; False once ``rows`` is over."""
        while True:
            alive = [slot for slot in self.slots if slot.alive]
            if not alive:
                return True
            slot = max(alive, key=lambda s: s.free)
            want = min(self.block_size, slot.free)
            if want < min(self.block_size, slot.capacity):
                return True  # wait until a block's worth of slots is free
            block: dict[int, Any] = {}
            for index, row in rows:  # the engine's gate and cache run as each row is taken
                block[index] = row
                if len(block) >= want:
                    break
            if block:
                self._submit(slot, block, on_row, on_start, on_usage)
            if len(block) < want:
                return False

    def _submit(
        self,
        slot: _Slot,
        block: dict[int, Any],
        on_row: OnRow,
        on_start: OnStart | None,
        on_usage: OnUsage | None,
    ) -> None:
        method = slot.actor.run_block.options(num_returns="streaming")
        try:
            stream = method.remote(list(block.items()))
        except Exception:  # a row that does not pickle: it fails alone, the others go
            cloudpickle = importlib.import_module("ray.cloudpickle")
            for index, row in list(block.items()):
                try:
                    cloudpickle.dumps(row)
                except Exception as exc:
                    del block[index]
                    on_row(BatchRow(index, row, error=f"this row does not pickle for Ray: {exc}"))
            if not block:
                return
            stream = method.remote(list(block.items()))
        slot.free -= len(block)
        call = asyncio.ensure_future(self._consume(slot, block, stream, on_row, on_start, on_usage))
        self._calls[call] = stream

    async def _consume(
        self,
        slot: _Slot,
        block: dict[int, Any],
        stream: Any,
        on_row: OnRow,
        on_start: OnStart | None,
        on_usage: OnUsage | None,
    ) -> None:
        assert self._wake is not None
        ray = _ray()
        pending = dict(block)
        try:
            async for ref in stream:
                for event in await ref:
                    if event[0] == "row":
                        row = event[1]
                        row.input = pending.pop(row.index, None)
                        slot.free += 1
                        on_row(row)
                    elif event[0] == "usage" and on_usage is not None:
                        on_usage(event[1], event[2], event[3])
                    elif event[0] == "start" and on_start is not None:
                        on_start(event[1], block[event[1]])
                self._wake.set()
            error = "the Ray worker ended the block without this row"
        except ray.exceptions.RayError as exc:
            if self._cancelling:
                return  # the rows it did not report are "not run" (the engine says why)
            if isinstance(exc, ray.exceptions.RayActorError):
                slot.alive = False
            error = f"Ray worker failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        finally:
            self._wake.set()
        for index, row in pending.items():
            slot.free += 1
            on_row(BatchRow(index, row, error=error))

    async def _cancel_calls(self) -> None:
        """Cancel every in-flight Ray call and give the workers a moment to report the rows
        that finished anyway."""
        self._cancelling = True
        ray = _ray()
        for stream in self._calls.values():
            try:
                ray.cancel(stream)
            except Exception:  # finished meanwhile
                pass
        calls = list(self._calls)
        if calls:
            _, late = await asyncio.wait(calls, timeout=CANCEL_GRACE)
            for call in late:
                call.cancel()
        self._calls.clear()
