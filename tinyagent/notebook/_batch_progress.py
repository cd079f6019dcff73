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

The ``%%agent --map`` cell's own pieces live here too: checking its template against the rows
before anything is sent (:func:`check_template`), the rows' configuration (:func:`map_config`),
a Stop that works on every path (:class:`StopRelay`) and the summary it displays at the end
(:class:`BatchSummary`).
"""

from __future__ import annotations

import asyncio
import html
import inspect
import logging
import re
import string
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anywidget
import traitlets
from IPython.core.error import UsageError

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
        # nothing is left to wait for: the final line has no ETA
        parts = [part for part in line.split(" · ") if not part.startswith("ETA ")]
        return " · ".join([*parts, stop_reason(self._stopped)])

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


# -- %%agent --map ---------------------------------------------------------------------------------

_POSITIONAL = re.compile(r"\d*")
SUMMARY_ROWS = 5  # rows the summary table shows
_CELL_CHARS = 160  # characters of an input or output the summary shows


def _template_roots(template: str) -> list[str]:
    """The names the template's fields start with (``{a.b}``, ``{a[0]}`` → ``a``; ``{}`` → "")."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(
            f"%%agent --map: the cell body is not a str.format template: {exc} "
            "(write {{ and }} for literal braces)"
        ) from None
    roots = []
    for _text, field, _spec, _conversion in parsed:
        if field is not None:
            roots.append(re.split(r"[.\[]", field, maxsplit=1)[0])
    return roots


def _keys_text(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:20])
    return (shown + (", …" if len(keys) > 20 else "")) or "none"


def check_template(template: str, rows: Any, name: str) -> None:
    """A ``UsageError`` naming the first field of ``template`` that ``rows`` (the value of
    ``--map name``: a DataFrame, a list of dicts or a list of strings) cannot fill."""
    from tinyagent.batch._rows import is_dataframe

    roots = _template_roots(template)
    if is_dataframe(rows):
        columns = [str(c) for c in rows.columns]
        for root in roots:
            if _POSITIONAL.fullmatch(root):
                raise UsageError(
                    f"%%agent --map {name}: {{{root}}} fills from a list of strings; name a "
                    f"column of {name} instead (its columns: {_keys_text(columns)})"
                )
            if root not in columns:
                raise UsageError(
                    f"%%agent --map {name}: the template needs {{{root}}}, which {name} does "
                    f"not have (its columns: {_keys_text(columns)})"
                )
        return
    if not isinstance(rows, list | tuple):
        raise UsageError(
            f"%%agent --map {name}: needs a DataFrame, a list of dicts or a list of strings, "
            f"not {type(rows).__name__}"
        )
    for index, row in enumerate(rows):
        if isinstance(row, str):
            for root in roots:
                if root not in ("", "0", "input"):
                    raise UsageError(
                        f"%%agent --map {name}: the template needs {{{root}}}, but row {index} "
                        "is a str: only {} and {input} are filled from a string row"
                    )
        elif isinstance(row, Mapping):
            keys = [str(k) for k in row]
            for root in roots:
                if _POSITIONAL.fullmatch(root):
                    raise UsageError(
                        f"%%agent --map {name}: {{{root}}} fills from a list of strings; row "
                        f"{index} is a dict: name one of its keys ({_keys_text(keys)})"
                    )
                if root not in row:
                    raise UsageError(
                        f"%%agent --map {name}: the template needs {{{root}}}, which row "
                        f"{index} does not have (its keys: {_keys_text(keys)})"
                    )
        else:
            raise UsageError(
                f"%%agent --map {name}: row {index} is a {type(row).__name__}; rows are dicts "
                "or strings"
            )


class StopRelay:
    """The progress handed to the batch: forwards to ``inner`` (the widget, the stderr line or
    nothing) and keeps the engine's stop, so the worker-loop path's Ctrl-C can :meth:`stop` it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._stops: list[Callable[[], None]] = []

    def start(self, counts: ProgressCounts) -> None:
        self._forward("start", counts)

    def update(self, counts: ProgressCounts) -> None:
        self._forward("update", counts)

    def finish(self, counts: ProgressCounts, stopped: str | None) -> None:
        self._forward("finish", counts, stopped)

    def on_stop(self, callback: Callable[[], None]) -> None:
        self._stops.append(callback)
        self._forward("on_stop", callback)

    def stop(self, reason: str | None = None) -> None:
        """Stop the batch; ``reason`` (e.g. "interrupted") when the engine's stop takes one."""
        for callback in list(self._stops):
            try:
                takes_reason = reason is not None and bool(inspect.signature(callback).bind(reason))
            except (TypeError, ValueError):
                takes_reason = False
            callback(reason) if takes_reason else callback()  # type: ignore[call-arg]

    def _forward(self, name: str, *args: Any) -> None:
        if self.inner is not None:
            getattr(self.inner, name)(*args)


def map_config(
    agent: Any, args: Any, tools: list[Any] | None, overrides: dict[str, str], resolved: Any
) -> Any:
    """The AgentConfig each row of a ``--map`` cell starts from: what the conversation's next
    cell would run with (model, system prompt, tools, the cell's sampling), never its messages.
    ``resolved`` is None for ``--agent VAR``, whose options hold for this batch only."""
    from tinyagent.batch._config import AgentConfig

    from ._conversation import _overrides, build_model

    changes: dict[str, Any] = {}
    if resolved is not None:  # the kernel's own conversations: sticky, as in a normal cell
        model = build_model(resolved)
        current = agent.state.model
        if current is None or any(
            getattr(current, k, None) != getattr(model, k, None)
            for k in ("provider", "id", "base_url")
        ):
            agent.set_model(model)
        if resolved.system is not None:
            agent.set_system_prompt(resolved.system)
        if tools is not None:
            agent.set_tools(list(tools))
        changes.update(temperature=resolved.temperature, max_tokens=resolved.max_tokens)
    else:
        per_run = _overrides(agent, overrides)
        changes.update({k: per_run[k] for k in ("model", "system_prompt") if k in per_run})
        if tools is not None:
            changes["tools"] = tuple(tools)
    if args.temperature is not None:
        changes["temperature"] = args.temperature
    if args.max_tokens is not None:
        changes["max_tokens"] = args.max_tokens
    if isinstance(args.cache, bool):  # --cache / --no-cache: prompt caching; a path is --map's
        changes["enable_prompt_caching"] = args.cache
    try:
        return AgentConfig.from_agent(agent).replace(**changes)
    except RuntimeError as exc:  # an Agent without a model
        raise UsageError(f"--agent {args.agent}: {exc}") from None


def _short(value: Any, limit: int = _CELL_CHARS) -> str:
    if isinstance(value, Mapping):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    else:
        text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class BatchSummary:
    """What a ``%%agent --map`` cell displays at the end: the counts and the first rows, as a
    small HTML table and as text/plain (no timings in the text: nbval compares it)."""

    def __init__(self, result: Any, name: str = "", rows: int = SUMMARY_ROWS) -> None:
        self.result = result
        self.name = name
        self.rows = rows

    def counts_line(self) -> str:
        result = self.result
        c = result.counts
        parts = [f"{len(result)} rows", f"{c['done']} done"]
        if c["cached"]:
            parts.append(f"{c['cached']} from cache")
        parts.append(f"{c['failed']} failed")
        if c["not_run"]:
            parts.append(f"{c['not_run']} not run")
        parts.append(f"{result.usage['total_tokens']} tokens")
        if result.cost:
            parts.append(f"${result.cost:.4f}")
        if result.stopped:
            parts.append(stop_reason(result.stopped))
        return " · ".join(parts)

    def _lines(self) -> list[tuple[str, str, str, str]]:
        return [
            (str(row.index), _short(row.input), row.status.replace("_", " "),
             _short(row.output) if row.error is None else _short(row.error))
            for row in self.result[: self.rows]
        ]  # fmt: skip

    def text(self) -> str:
        lines = [self.counts_line()]
        for index, given, status, answer in self._lines():
            lines.append(
                f"  {index:>3}  {status:<7}  {_short(given, 40):<40}  {_short(answer, 80)}"
            )
        more = len(self.result) - self.rows
        if more > 0:
            lines.append(f"  … {more} more rows")
        return "\n".join(lines)

    def html(self) -> str:
        e = html.escape
        body = "".join(
            f'<tr class="ta-map-{e(status.replace(" ", "-"))}"><td>{e(index)}</td>'
            f"<td>{e(given)}</td><td>{e(status)}</td><td>{e(answer)}</td></tr>"
            for index, given, status, answer in self._lines()
        )
        more = len(self.result) - self.rows
        tail = f'<div class="ta-map-more">… {more} more rows</div>' if more > 0 else ""
        seconds = getattr(self.result, "duration", 0.0)
        return (
            f"<style>{_SUMMARY_STYLE}</style>"
            f'<div class="tinyagent ta-map-summary"><div class="ta-map-counts">'
            f'{e(self.counts_line())} · <span class="ta-time">{seconds:.1f} s</span></div>'
            "<table><thead><tr><th>#</th><th>input</th><th>status</th><th>output / error</th>"
            f"</tr></thead><tbody>{body}</tbody></table>{tail}</div>"
        )

    def _repr_mimebundle_(self, **_: Any) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def __repr__(self) -> str:
        return self.text()


_SUMMARY_STYLE = (
    ".ta-map-summary{font-family:var(--jp-ui-font-family,system-ui,sans-serif);"
    "font-size:var(--jp-ui-font-size1,13px);color:var(--jp-ui-font-color1,inherit)}"
    ".ta-map-summary table{border-collapse:collapse;margin:0.3em 0}"
    # two classes: above JupyterLab's right-aligned `.jp-RenderedHTMLCommon table td`
    ".tinyagent.ta-map-summary table th,.tinyagent.ta-map-summary table td{"
    "border:1px solid var(--jp-border-color2,#ddd);padding:0.15em 0.5em;text-align:left;"
    "vertical-align:top;max-width:32em}"
    ".tinyagent.ta-map-summary table th{background:var(--jp-layout-color2,#f5f5f5)}"
    ".ta-map-summary .ta-map-failed td:nth-child(3){color:var(--jp-error-color1,#d32f2f)}"
    ".ta-map-summary .ta-map-not-run td:nth-child(3){color:var(--jp-warn-color0,#e65100)}"
    ".ta-map-summary .ta-map-more,.ta-map-summary .ta-time{color:var(--jp-ui-font-color2,#666)}"
)
