"""One agent over many inputs (docs/batch.md).

``run_batch(agent, inputs, ...)`` blocks (scripts); ``await arun_batch(agent, inputs, ...)`` and
``await agent.map(inputs, ...)`` are the same inside an event loop (Jupyter, async code). Each
input runs on a fresh Agent built from a snapshot of ``agent``'s configuration, never its
history; the result is a :class:`BatchResult` of :class:`BatchRow` in input order::

    result = run_batch(agent, ["Paris?", "Rome?"])
    result = await arun_batch(agent, rows, prompt="Classify: {text}", output_type=Label,
                              concurrency=64, budget=Budget(usd=2.0), cache="labels.sqlite")
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

from ._engine import BatchOptions, Engine
from ._limits import Budget
from ._result import BatchResult, BatchRow

__all__ = ["BatchResult", "BatchRow", "Budget", "RayOptions", "arun_batch", "run_batch"]

_IN_LOOP = (
    "run_batch() blocks, and this thread is running an event loop (Jupyter, async code): use "
    "`await arun_batch(agent, inputs, ...)` or `await agent.map(inputs, ...)` instead"
)
_RAY_MISSING = "backend='ray' needs Ray and the Ray backend: pip install 'tiny-agent-os[ray]'"


def run_batch(
    agent: Any,
    inputs: Any,
    *,
    prompt: str | Callable[[Any], str] | None = None,
    output_type: Any = None,
    concurrency: int = 32,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    max_attempts: int = 3,
    max_failures: int | None = None,
    budget: int | float | Budget | None = None,
    cache: Any = None,
    backend: str = "local",
    progress: Any = True,
    keep_messages: bool = False,
    ray: Any = None,
) -> BatchResult:
    """Run ``agent`` over ``inputs`` and wait for the result (Ctrl-C returns the partial one).

    See :func:`arun_batch` for the options.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(_IN_LOOP)
    options = BatchOptions(
        prompt=prompt, output_type=output_type, concurrency=concurrency,
        requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute,
        max_attempts=max_attempts, max_failures=max_failures, budget=budget, cache=cache,
        backend=backend, progress=progress, keep_messages=keep_messages,
    )  # fmt: skip
    _check_ray_options(options, ray)
    if options.backend == "ray":
        return asyncio.run(_run_on_ray(agent, inputs, options, ray))
    engine = Engine(agent, inputs, options)
    try:
        return asyncio.run(engine.run())
    except KeyboardInterrupt:  # escaped the loop: what finished is kept, the rest not run
        return engine.result()


async def arun_batch(
    agent: Any,
    inputs: Any,
    *,
    prompt: str | Callable[[Any], str] | None = None,
    output_type: Any = None,
    concurrency: int = 32,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    max_attempts: int = 3,
    max_failures: int | None = None,
    budget: int | float | Budget | None = None,
    cache: Any = None,
    backend: str = "local",
    progress: Any = True,
    keep_messages: bool = False,
    ray: Any = None,
) -> BatchResult:
    """Run ``agent`` over ``inputs``: each input on a fresh copy of the agent's configuration.

    - ``inputs``: a list of str or dict, a pandas DataFrame (rows as dicts), or any iterable
      (pulled lazily, at most ``concurrency`` rows ahead).
    - ``prompt``: a ``str.format`` template over a row's keys (``"Classify: {text}"``), a function
      row → str, or None when every row is its own prompt. A key the first row lacks raises
      before anything is sent; a later row that lacks it fails as that row.
    - ``output_type``: a pydantic model; the answer is asked for as JSON, validated (one repair
      turn), and ``row.output`` is the instance.
    - ``concurrency`` rows in flight; ``requests_per_minute`` / ``tokens_per_minute`` client-side
      limits; an HTTP 429 pauses every new request of the batch for its Retry-After.
    - ``max_attempts`` per row for transient failures (connection, timeouts, 429, 5xx);
      ``max_failures`` stops starting rows after that many failed rows.
    - ``budget``: an int (tokens), a float (US dollars) or ``Budget(tokens=, usd=)``; no row
      starts once this run has spent it.
    - ``cache``: a SQLite path; finished rows are stored as they finish and a rerun sends
      nothing for them.
    - ``progress``: True (a widget in a live notebook, a stderr line elsewhere), False, or a
      Progress object (docs/batch.md#progress-seam). ``keep_messages``: keep each row's
      conversation in ``row.messages``.
    - ``backend``: ``"local"`` (this event loop) or ``"ray"`` (Ray workers, docs/batch.md#ray-backend);
      ``ray``: how, a :class:`RayOptions` or a dict of its fields (``workers``, ``block_size``,
      ``num_cpus`` per worker, ``init`` for the ``ray.init(...)`` of a Ray started for the call,
      ``start_timeout``), only with ``backend="ray"``.

    Cancelling the awaiting task (the kernel's interrupt) or pressing Stop returns the partial
    result: rows in flight and rows not started are ``"not run: interrupted"`` / ``"…: stopped"``.
    """
    options = BatchOptions(
        prompt=prompt, output_type=output_type, concurrency=concurrency,
        requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute,
        max_attempts=max_attempts, max_failures=max_failures, budget=budget, cache=cache,
        backend=backend, progress=progress, keep_messages=keep_messages,
    )  # fmt: skip
    _check_ray_options(options, ray)
    if options.backend == "ray":
        return await _run_on_ray(agent, inputs, options, ray)
    return await Engine(agent, inputs, options).run()


def _check_ray_options(options: BatchOptions, ray: Any) -> None:
    if ray is None:
        return
    if options.backend != "ray":
        raise ValueError("ray= options are for backend='ray'")
    if not isinstance(ray, dict) and type(ray).__name__ != "RayOptions":
        raise TypeError(f"ray= takes a RayOptions or a dict of its fields, got {type(ray).__name__}")


def __getattr__(name: str) -> Any:
    if name == "RayOptions":  # defined with the backend; importing it does not import Ray
        return importlib.import_module("tinyagent.batch._ray").RayOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_ray(module: str | None) -> bool:
    name = module or ""
    return name == "ray" or name.startswith("ray.") or name == "tinyagent.batch._ray"


async def _run_on_ray(
    agent: Any, inputs: Any, options: BatchOptions, ray: Any = None
) -> BatchResult:
    """``tinyagent.batch._ray.run_ray``, imported only when asked for; a missing Ray (at import
    or when the backend first needs it) is the install hint."""
    try:
        module = importlib.import_module("tinyagent.batch._ray")
    except ModuleNotFoundError as exc:
        if _is_ray(exc.name):
            raise ImportError(_RAY_MISSING) from exc
        raise
    args: tuple[Any, ...] = (agent, inputs, options)
    if ray is not None:
        args += (module.RayOptions(**ray) if isinstance(ray, dict) else ray,)
    try:
        result: BatchResult = await module.run_ray(*args)
    except ModuleNotFoundError as exc:
        if _is_ray(exc.name):
            raise ImportError(_RAY_MISSING) from exc
        raise
    return result
