"""``NotebookProgress``: the progress of a batch as a widget with a Stop button
(docs/batch.md#progress-in-a-notebook).

It implements the :class:`~tinyagent.batch._progress.Progress` seam: the engine calls ``start``
once, ``update`` as often as it likes and ``finish`` once, and registers its stop with
``on_stop``. Like :class:`~tinyagent.notebook._widget.AgentView` it is one anywidget with one
synced ``state`` trait (declared here and nowhere else) and a hand-written ESM shipped as package
data (``_batch_progress.js`` / ``.css``, no build step).

* Redraws are throttled in Python to ``MAX_RATE`` state messages per second. An update that comes
  too soon arms one loop timer, so the last counts are never held back until the next event;
  ``finish`` always sends the final state.
* Stop: the view sends ``{"event": "stop"}``; the comm message is handled on the kernel's loop,
  which calls the registered callbacks there. The button then reads "Stopping…" until ``finish``
  removes it.
* ``text/plain`` of the bundle is the current line (``ProgressCounts.line()``, plus why it
  stopped once finished), so a terminal or a saved notebook shows something readable. When the
  widget displayed itself (on ``start``), ``finish`` updates that display, so the saved
  notebook's text is the final line rather than the first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from tinyagent.batch._progress import MAX_RATE, ProgressCounts

logger = logging.getLogger("tinyagent.notebook")

_HERE = Path(__file__).parent

#: why a batch ended, as the finished widget says it
STOP_REASONS: dict[str | None, str] = {
    None: "finished: every row ran",
    "stopped": "stopped with the Stop button",
    "interrupted": "interrupted (kernel interrupt)",
    "budget": "stopped: the budget is spent",
    "max_failures": "stopped: too many rows failed (max_failures)",
}


def stop_reason(stopped: str | None) -> str:
    return STOP_REASONS.get(stopped, f"stopped: {stopped}")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class NotebookProgress(anywidget.AnyWidget):  # type: ignore[misc]
    """A batch's progress bar, counts, rate, ETA and Stop button in a notebook cell.

    ``clock`` is the throttle's clock (tests pass a fake one). Display it yourself before the
    batch starts, or let ``start`` display it.
    """

    _esm = _HERE / "_batch_progress.js"
    _css = _HERE / "_batch_progress.css"
    #: everything the view shows; see :meth:`snapshot`
    state = traitlets.Dict().tag(sync=True)

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        # set before the base __init__ opens the comm (open sends the state)
        self._clock = clock
        self._counts = ProgressCounts()
        self._finished = False
        self._stopped: str | None = None
        self._stopping = False
        self._callbacks: list[Callable[[], None]] = []
        self._last_sent = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._displayed = False
        self._handle: Any = None
        super().__init__(state=self.snapshot())
        self.on_msg(self._on_message)

    # -- what the view and text/plain show -----------------------------------------------------

    @property
    def counts(self) -> ProgressCounts:
        return self._counts

    @property
    def finished(self) -> bool:
        return self._finished

    def text(self) -> str:
        """The current line; once finished, with why the batch ended."""
        line = self._counts.line()
        if not self._finished:
            return line
        return f"{line} · {stop_reason(self._stopped)}"

    def snapshot(self) -> dict[str, Any]:
        """The ``state`` trait for the current counts."""
        c = self._counts
        eta = c.eta
        return {
            "total": c.total,
            "done": c.done,
            "cached": c.cached,
            "failed": c.failed,
            "running": c.running,
            "not_run": c.not_run,
            "tokens": c.tokens,
            "cost": f"${c.cost:.4f}" if c.cost else "",
            "rate": f"{c.rows_per_second:.1f} rows/s",
            "eta": "" if eta is None or self._finished else f"ETA {_duration(eta)}",
            "elapsed": _duration(c.elapsed),
            "line": self.text(),
            "finished": self._finished,
            "stopped": self._stopped,
            "reason": stop_reason(self._stopped) if self._finished else "",
            "stopping": self._stopping and not self._finished,
        }

    def __repr__(self) -> str:
        return f"NotebookProgress({self.text()!r})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        self._displayed = True
        if isinstance(data, tuple):
            data = (dict(data[0]), *data[1:])
            data[0]["text/plain"] = self.text()
        elif isinstance(data, dict):
            data = {**data, "text/plain": self.text()}
        return data

    # -- the Progress protocol -----------------------------------------------------------------

    def start(self, counts: ProgressCounts) -> None:
        self._counts = counts
        self._finished = False
        self._stopped = None
        self._stopping = False
        if not self._displayed:
            from IPython.display import display

            self._handle = display(self, display_id=True)
            self._displayed = True
        self._flush()

    def update(self, counts: ProgressCounts) -> None:
        self._counts = counts
        if self._finished:
            return
        wait = self._last_sent + 1.0 / MAX_RATE - self._clock()
        if wait <= 0:
            self._flush()
            return
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop here to wake us: the next update or finish sends it
            self._timer = loop.call_later(wait, self._deferred)

    def finish(self, counts: ProgressCounts, stopped: str | None) -> None:
        self._counts = counts
        self._finished = True
        self._stopped = stopped
        self._cancel_timer()
        self._flush()
        if self._handle is not None:
            # the display we made: its text/plain becomes the final line (the saved notebook)
            try:
                self._handle.update(self)
            except Exception:  # noqa: BLE001 - a display that went away must not fail the batch
                logger.debug("could not update the batch progress display", exc_info=True)

    def on_stop(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    # -- Stop ----------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """What the Stop button does: call the registered callbacks once, show "Stopping…"."""
        if self._finished or self._stopping:
            return
        self._stopping = True
        self._flush()
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:  # a UI callback must never kill the comm handler
                logger.exception("batch stop callback failed")

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "stop":
            self.request_stop()

    # -- sending -------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._last_sent = self._clock()
        new = self.snapshot()
        if new != self.state:
            self.state = new

    def _deferred(self) -> None:
        self._timer = None
        if not self._finished:
            self._flush()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
