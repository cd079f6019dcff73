"""``run_sync(coro)``: run a coroutine to completion from code that cannot ``await``.

With no running loop in this thread it uses a fresh loop, like ``asyncio.run``. Inside a running
loop (a Jupyter kernel, an async framework) it runs the coroutine on a worker thread's own loop
and waits for it, so it never raises "asyncio.run() cannot be called from a running event loop"
(docs/notebook.md#kernel-loop). A ``KeyboardInterrupt`` while waiting cancels the coroutine on
its loop (an Agent run cancelled that way is aborted and completed, docs/events.md#abort) before
propagating.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")

_JOIN_SLICE_SECONDS = 0.05  # short joins keep the waiting thread responsive to Ctrl-C


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    return _run_on_worker_loop(coro)


def _run_on_worker_loop(coro: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.new_event_loop()
    outcome: dict[str, Any] = {}
    started = threading.Event()
    main_task: list[asyncio.Task[T]] = []

    async def runner() -> T:
        main_task.append(asyncio.current_task())  # type: ignore[arg-type]
        started.set()
        return await coro

    def target() -> None:
        try:
            outcome["value"] = loop.run_until_complete(runner())
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc
        finally:
            started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    worker = threading.Thread(target=target, name="tinyagent-run-sync", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(_JOIN_SLICE_SECONDS)
    except KeyboardInterrupt:
        started.wait()
        if main_task and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(main_task[0].cancel)
            except RuntimeError:
                pass
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
