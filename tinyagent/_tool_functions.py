"""Tool ``execute`` functions as people write them: ``async def`` or a plain ``def``.

The loop always awaits ``execute(tool_call_id, args, signal, on_update)``. A plain function is
wrapped once, when it is assigned to ``AgentTool.execute``, into a coroutine function that runs it
in a daemon worker thread, so a slow tool never freezes the event loop (the kernel's, in Jupyter).
A thread cannot be killed: on abort the call gets its aborted result at once and the thread is
detached with a logged warning. The notebook's ``-t`` functions use the same thread runner.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("tinyagent.tools")


class ToolError(Exception):
    """Raise it from a tool for a failure the model should read and fix (an unknown name, a row
    that is not there): its message becomes the error result, without the logged traceback that
    any other exception gets, since nothing in the tool is broken."""


def is_async_callable(fn: Any) -> bool:
    """True for ``async def`` functions, partials of them, and objects with an async ``__call__``."""
    if inspect.iscoroutinefunction(fn) or asyncio.iscoroutinefunction(fn):
        return True
    if inspect.isroutine(fn) or not callable(fn):
        return False
    return inspect.iscoroutinefunction(type(fn).__call__)


def as_async_execute(tool_name: str, fn: Any) -> Any:
    """``fn`` itself when it is async (or ``None``), else an async wrapper running it in a thread.

    Anything that is not callable is a ``TypeError`` naming the tool, raised where the tool is
    built rather than as a puzzling error result in the middle of a run.
    """
    if fn is None or is_async_callable(fn) or getattr(fn, "_tinyagent_threaded", False):
        return fn
    if not callable(fn):
        raise TypeError(
            f"AgentTool {tool_name or '(unnamed)'!r}: execute must be a function "
            f"(def or async def) taking (tool_call_id, args, signal, on_update), "
            f"got {type(fn).__name__}"
        )

    @functools.wraps(fn)
    async def execute(*args: Any, **kwargs: Any) -> Any:
        value = await call_in_thread(fn, args, kwargs, tool_name)
        # A plain function may hand back a coroutine (``lambda *a: work(*a)``): finish it here.
        if inspect.isawaitable(value):
            value = await value
        return value

    execute._tinyagent_threaded = True  # type: ignore[attr-defined]
    return execute


async def call_in_thread(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> Any:
    """Run a sync function in a daemon thread; on cancellation, detach it with a warning."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            _post(loop, settle, False, exc)
        else:
            _post(loop, settle, True, value)

    thread = threading.Thread(target=work, name=f"tinyagent-tool-{name}", daemon=True)
    thread.start()
    try:
        return await future
    except asyncio.CancelledError:
        if thread.is_alive():
            logger.warning(
                "sync tool %r is still running in its worker thread; it cannot be stopped and "
                "was detached (its result will be ignored)",
                name,
            )
        raise


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed: the run is long gone
        pass
