"""One event loop: the ``%%agent`` input transformer, and the worker-thread fallback
(docs/notebook.md#kernel-loop).

Production path: :func:`agent_cell_transformer` (an IPython cleanup transformer) rewrites a
``%%agent`` cell into a top-level ``await`` of the run, so ipykernel runs it on the kernel's own
loop: the output streams, comm messages (the Stop button) are processed mid-run, and the kernel
interrupt cancels the awaiting task, which aborts the run (docs/events.md#abort).

Fallback: when the magic is called synchronously (``get_ipython().run_cell_magic(...)`` from
code, or a bare IPython shell) nothing can await it. :func:`run_blocking` then runs the run on a
fresh loop in a worker thread and joins it; ``KeyboardInterrupt`` in the joining thread calls
``abort()`` (thread-safe) and keeps joining until the run has closed. The worker thread runs in a
copy of the caller's ``contextvars`` context, so its output reaches the right cell. This never
calls ``asyncio.run()`` inside a running loop and never needs nest-asyncio.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger("tinyagent.notebook")
T = TypeVar("T")

_CELL_HEADER = re.compile(r"^%%agent(?P<args>[ \t].*)?$")
#: a cell that is only ``%agent fix ...``: it runs like a %%agent cell (kernel tools on the loop)
_FIX_LINE = re.compile(r"^%agent[ \t]+(?P<line>fix(?:[ \t].*)?)$")


def agent_cell_transformer(lines: list[str]) -> list[str]:
    """Rewrite ``%%agent`` cells into ``await <run>``; every other cell passes unchanged."""
    if not lines:
        return lines
    header = lines[0].rstrip("\r\n")
    fix = _FIX_LINE.match(header.strip())
    if fix is not None and not "".join(lines[1:]).strip():
        line = fix.group("line").strip()
        return [
            "await __import__('tinyagent.notebook._magics', fromlist=['run_agent_cell'])"
            f".run_agent_cell({line!r}, None)\n"
        ]
    match = _CELL_HEADER.match(header)
    if match is None or header.rstrip().endswith("?"):
        return lines  # not ours, or ``%%agent?`` help
    args = (match.group("args") or "").strip()
    body = "".join(lines[1:])
    call = (
        "await __import__('tinyagent.notebook._magics', fromlist=['run_agent_cell'])"
        f".run_agent_cell({args!r}, {body!r})\n"
    )
    return [call]


def install_transformer(shell: Any) -> None:
    cleanup = getattr(shell, "input_transformers_cleanup", None)
    if cleanup is not None and agent_cell_transformer not in cleanup:
        cleanup.append(agent_cell_transformer)


def uninstall_transformer(shell: Any) -> None:
    cleanup = getattr(shell, "input_transformers_cleanup", None)
    if cleanup is not None and agent_cell_transformer in cleanup:
        cleanup.remove(agent_cell_transformer)


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def start_in_worker(
    make_coro: Callable[[], Coroutine[Any, Any, T]],
) -> tuple[threading.Thread, threading.Event, dict[str, Any]]:
    """Start ``make_coro()`` on a new loop in a daemon worker thread (copied contextvars)."""
    box: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()

    def work() -> None:
        loop = asyncio.new_event_loop()
        try:
            asyncio.set_event_loop(loop)
            box["value"] = loop.run_until_complete(make_coro())
        except BaseException as exc:  # noqa: BLE001 - handed to the joining thread
            box["error"] = exc
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                done.set()

    thread = threading.Thread(target=context.run, args=(work,), name="tinyagent-run", daemon=True)
    thread.start()
    return thread, done, box


def run_blocking(
    make_coro: Callable[[], Coroutine[Any, Any, T]],
    on_interrupt: Callable[[], None],
    grace: float = 10.0,
) -> T | None:
    """Run on a worker-thread loop and join; ``KeyboardInterrupt`` → ``on_interrupt()``."""
    thread, done, box = start_in_worker(make_coro)
    interrupted = False
    while not done.is_set():
        try:
            done.wait(0.05 if not interrupted else grace)
        except KeyboardInterrupt:
            if not interrupted:
                interrupted = True
                on_interrupt()
                continue
            break
        if interrupted and not done.is_set():
            break
    if not done.is_set():
        logger.warning(
            "the interrupted run did not finish within %.0f s; detached its thread", grace
        )
        return None
    if "error" in box:
        raise box["error"]
    return box.get("value")  # type: ignore[no-any-return]
