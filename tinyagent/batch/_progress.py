"""How a batch shows its progress: the seam between the engine and what the person sees.

The engine calls a :class:`Progress` (``start`` once, ``update`` as rows start and end — as often
as it likes, the progress throttles itself — and ``finish`` once) and asks it for a Stop button
with ``on_stop``. ``make_progress(True)`` picks the front end: the notebook widget
(``tinyagent.notebook._batch_progress.NotebookProgress``) in a kernel with a live front end, else
one line on stderr rewritten in place; ``False`` shows nothing; any object with these methods is
used as it is. A kernel without a live front end (nbval, nbconvert) shows nothing.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

#: at most this many redraws per second
MAX_RATE = 10.0


@dataclasses.dataclass
class ProgressCounts:
    total: int | None = None  # None while a lazy iterable has not been consumed
    done: int = 0  # finished with an output (cached rows included)
    cached: int = 0  # of ``done``: answered from the resume cache, nothing sent
    failed: int = 0
    running: int = 0
    not_run: int = 0  # budget, max_failures or a stop left them out
    tokens: int = 0
    cost: float = 0.0
    elapsed: float = 0.0  # seconds since start

    @property
    def rows_per_second(self) -> float:
        finished = self.done - self.cached + self.failed
        return finished / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate; None when unknown."""
        if self.total is None or self.rows_per_second <= 0:
            return None
        left = self.total - self.done - self.failed - self.not_run
        return max(0.0, left / self.rows_per_second)

    def line(self) -> str:
        total = "?" if self.total is None else str(self.total)
        parts = [f"{self.done + self.failed}/{total} rows", f"{self.done} done"]
        if self.cached:
            parts.append(f"{self.cached} from cache")
        parts += [f"{self.failed} failed", f"{self.running} running"]
        if self.not_run:
            parts.append(f"{self.not_run} not run")
        parts.append(f"{self.tokens} tokens")
        if self.cost:
            parts.append(f"${self.cost:.4f}")
        parts.append(f"{self.rows_per_second:.1f} rows/s")
        if self.eta is not None:
            parts.append(f"ETA {self.eta:.0f} s")
        return " · ".join(parts)


class Progress(Protocol):
    def start(self, counts: ProgressCounts) -> None: ...

    def update(self, counts: ProgressCounts) -> None: ...

    def finish(self, counts: ProgressCounts, stopped: str | None) -> None:
        """``stopped``: why the batch ended early ("interrupted", "budget", "max_failures",
        "stopped"), None when every row ran."""

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from any thread) when the person presses Stop; may never call it."""


class TerminalProgress:
    """One line on a text stream (stderr), rewritten in place at most ``MAX_RATE`` times/s."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.clock = clock
        self._last = float("-inf")
        self._width = 0

    def _write(self, text: str, end: str = "") -> None:
        stream = self.stream or sys.stderr
        padded = text.ljust(self._width)
        self._width = len(text)
        stream.write("\r" + padded + end)
        stream.flush()

    def start(self, counts: ProgressCounts) -> None:
        self._last = self.clock()
        self._write(counts.line())

    def update(self, counts: ProgressCounts) -> None:
        now = self.clock()
        if now - self._last >= 1.0 / MAX_RATE:
            self._last = now
            self._write(counts.line())

    def finish(self, counts: ProgressCounts, stopped: str | None) -> None:
        note = f" · stopped: {stopped}" if stopped else ""
        self._write(counts.line() + note, end="\n")

    def on_stop(self, callback: Callable[[], None]) -> None:
        return None  # a terminal stops with Ctrl-C (KeyboardInterrupt)


def make_progress(progress: Any) -> Progress | None:
    if progress is False or progress is None:
        return None
    if progress is not True:
        return progress  # type: ignore[no-any-return]
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from tinyagent.notebook._config import render_mode

        mode = render_mode(shell.user_ns, shell)
        if mode == "live":
            from tinyagent.notebook._batch_progress import NotebookProgress

            return NotebookProgress()
        if mode == "final":
            # nbval, nbconvert, papermill: no one watches, and a rate in the output would make
            # the saved notebook differ on every run; the BatchResult says how it went
            return None
    return TerminalProgress()
