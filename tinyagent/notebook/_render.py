"""Renderers: how a run shows up in a cell
(docs/notebook.md#render-modes, docs/notebook.md#live-rendering).

What was chosen, and why:

* **Mode selection** (:func:`tinyagent.notebook._config.render_mode`): ``TINYAGENT_RENDER`` wins;
  otherwise *live* only when a front end is known to be attached (``JPY_SESSION_NAME``,
  ``__vsc_ipynb_file__`` / ``PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING=1``, ``COLAB_RELEASE_TAG``),
  *final* in every other kernel (nbval, nbconvert, papermill, nbclient), and *text* (streamed to
  stdout) without a kernel.
* **Live**: one :class:`~tinyagent.notebook._widget.AgentView` per run. Events are folded into a
  :class:`~tinyagent.notebook._document.RunDocument`; at most one custom comm message per flush,
  flushes at most ``max_rate`` per second (25, under the 30/s budget with room for the one state
  message at the end). Pending changes are flushed by a loop timer, so nothing waits for the next
  event. Finished blocks are rendered and sanitized once and sent once; only the open tail is
  re-sent, and long blocks are split at line boundaries so the tail stays short: bytes grow O(n).
  When the run ends the widget's output is replaced (same display id) by the static rendering,
  and the widget is closed: the saved notebook always holds the static rendering, whatever the
  front end does with widget state.
* **Final**: exactly one ``display_data`` per run, emitted when it ends, deterministic for a
  deterministic model (no ``update_display_data``, no ``clear_output``, no ``Output`` widget).
* **Text**: the answer streams to stdout as it arrives; tool cards, footers and banners as lines.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from ._document import WAITING, NoteItem, RunDocument, ToolCard
from ._static import StaticOutput

RENDER_MODES = ("final", "live", "text", "quiet")


class Renderer:
    """Base renderer: a listener (``renderer(event)``) around a :class:`RunDocument`."""

    def __init__(self, doc: RunDocument) -> None:
        self.doc = doc
        self.finished = False

    def __call__(self, event: Any) -> None:
        self.doc.apply(event)
        self.changed()

    def changed(self) -> None:
        """The document changed."""

    def tool_finished(self, call_id: str, ok: bool, duration: float) -> None:
        self.doc.tool_finished(call_id, ok, duration)
        self.changed()

    def start(self) -> None:
        """The run is about to start."""

    def finish(self) -> None:
        """The run ended (normally, with an error, or stopped)."""
        self.finished = True

    def note(self, kind: str, text: str) -> None:
        """A message from the notebook layer itself (e.g. the missing-key message)."""
        self.doc.note(kind, text)
        self.changed()

    async def confirm(self, card: ToolCard) -> bool:
        """Ask the user whether a tool call may run (``--confirm``)."""
        return await self.choose(card, ("run", "skip")) == "run"

    async def choose(self, card: ToolCard, choices: tuple[str, ...]) -> str:
        """Ask whether a tool call may run: one of ``choices`` (``run``, ``skip``, ``always``),
        or ``headless`` when nobody can answer here (no stdin: nbclient, nbval)."""
        always = " / [a]lways in this conversation" if "always" in choices else ""
        prompt = f"Run tool {card.name}({card.args_text()})? [y]es / [N]o{always} "
        try:
            answer = input(prompt).strip().lower()
        except Exception:  # noqa: BLE001 - EOFError, StdinNotImplementedError under nbclient
            return "headless"
        if always and answer in ("a", "always"):
            return "always"
        return "run" if answer in ("y", "yes") else "skip"


class QuietRenderer(Renderer):
    async def choose(self, card: ToolCard, choices: tuple[str, ...]) -> str:
        return "headless"


class FinalRenderer(Renderer):
    """Exactly one output, at the end."""

    def __init__(self, doc: RunDocument, display: Callable[..., Any] | None = None) -> None:
        super().__init__(doc)
        self._display = display

    def finish(self) -> None:
        if self.finished:
            return
        super().finish()
        show = self._display or _ipython_display
        show(StaticOutput.from_document(self.doc))


class TextRenderer(Renderer):
    """Streams to a text stream: plain IPython terminal, or ``TINYAGENT_RENDER=text``."""

    def __init__(self, doc: RunDocument, out: TextIO | None = None) -> None:
        super().__init__(doc)
        self.out = out
        self._at_line_start = True
        self._shown = 0  # notes already printed

    def _write(self, text: str) -> None:
        stream = self.out or sys.stdout
        stream.write(text)
        stream.flush()
        if text:
            self._at_line_start = text.endswith("\n")

    def _line(self, text: str) -> None:
        if not self._at_line_start:
            self._write("\n")
        self._write(text + "\n")

    def __call__(self, event: Any) -> None:
        self.doc.apply(event)
        kind = event.type
        if kind == "message_update":
            inner = event.assistant_message_event
            if inner is not None and inner.type == "text_delta" and inner.delta:
                self._write(inner.delta)
            elif inner is not None and inner.type == "retry":
                self._show_new_notes()
        elif kind in ("message_end", "turn_end", "tool_execution_end"):
            if kind == "tool_execution_end":
                self._line(self.doc.card(event.tool_call_id, event.tool_name).text())
            self._show_new_notes()

    def _show_new_notes(self) -> None:
        notes = [item for item in self.doc.items if isinstance(item, NoteItem)]
        for note in notes[self._shown :]:
            if note.body:
                self._line(
                    note.text()
                    if note.kind == "user"
                    else f"[{note.body}{' · ' + note.detail if note.detail else ''}]"
                )
        self._shown = len(notes)

    def note(self, kind: str, text: str) -> None:
        super().note(kind, text)
        self._show_new_notes()


class LiveRenderer(Renderer):
    """One ``AgentView`` per run, throttled; replaced by the static rendering at the end."""

    def __init__(
        self,
        doc: RunDocument,
        *,
        on_stop: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_rate: float = 25.0,
        view: Any = None,
        display: Callable[..., Any] | None = None,
        embedded: bool = False,
    ) -> None:
        super().__init__(doc)
        self.embedded = embedded  # a panel's transcript: no display of its own, view stays open
        self.clock = clock
        self.interval = 1.0 / max_rate
        self._last = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._on_stop = on_stop
        self.view = view
        self._display = display
        self._handle: Any = None
        self._confirms: dict[str, asyncio.Future[str]] = {}
        self._activity = ""  # the status line the view shows

    def start(self) -> None:
        if self.view is None:
            from ._widget import AgentView

            self.view = AgentView(kind="run", running=True)
        # the view ticks the elapsed time itself from the run's wall-clock start
        self._activity = self.doc.activity or WAITING
        self.view.update_state(status=self._activity, since=int(time.time() * 1000))
        self.view.on_event("confirm", self._confirm_clicked)
        if self.embedded:
            return
        self.view.on_event("stop", lambda _msg: self._stop_clicked())
        if self._display is not None:
            self._handle = self._display(self.view)
        else:
            self._handle = _ipython_display(self.view, display_id=True)

    def _stop_clicked(self) -> None:
        if self._on_stop is not None:
            self._on_stop()

    def changed(self) -> None:
        if self.finished:
            return
        now = self.clock()
        if now - self._last >= self.interval:
            self.flush(now)
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop (events fed by hand): the next event or finish() flushes
            self._timer = loop.call_later(self.interval - (now - self._last), self._timer_flush)

    def _timer_flush(self) -> None:
        self._timer = None
        if not self.finished:
            self.flush(self.clock())

    def flush(self, now: float | None = None) -> None:
        ops = self.doc.take_ops()
        if ops and self.view is not None:
            self.view.send_ops(ops)
            self._last = self.clock() if now is None else now
        activity = "" if self.finished else self.doc.activity
        if activity != self._activity and self.view is not None:
            self._activity = activity
            self.view.update_state(status=activity)

    def finish(self) -> None:
        if self.finished:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()
        super().finish()
        if self.view is not None and self._activity:
            self._activity = ""
            self.view.update_state(status="")
        for future in self._confirms.values():
            if not future.done():
                future.set_result("skip")
        if self.embedded:
            return
        static = StaticOutput.from_document(self.doc)
        if self._handle is not None and hasattr(self._handle, "update"):
            self._handle.update(static)
        if self.view is not None:
            self.view.close()

    async def choose(self, card: ToolCard, choices: tuple[str, ...]) -> str:
        if threading.current_thread() is not threading.main_thread():
            # the worker-loop fallback: the kernel handles the click only after the cell ends,
            # so waiting for it would deadlock; ask through stdin instead
            return await super().choose(card, choices)
        key = card.id
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._confirms[key] = future
        ask = self.doc.note("confirm", card.name, key)
        ask.choices = choices
        self.doc.activity = f"waiting for you: run {card.name}?"
        self.flush()
        try:
            return await future
        finally:
            ask.body = ""
            self.doc.mark_changed(ask)
            self.changed()

    def _confirm_clicked(self, msg: dict[str, Any]) -> None:
        future = self._confirms.get(str(msg.get("id")))
        choice = msg.get("choice")
        if choice not in ("run", "skip", "always"):
            choice = "run" if msg.get("ok") else "skip"
        if future is not None and not future.done():
            future.get_loop().call_soon_threadsafe(_settle, future, choice)


def _settle(future: asyncio.Future[str], value: str) -> None:
    if not future.done():
        future.set_result(value)


def _ipython_display(obj: Any, **kwargs: Any) -> Any:
    from IPython.display import display

    return display(obj, **kwargs)


def make_renderer(
    mode: str,
    *,
    format: str = "markdown",
    on_stop: Callable[[], None] | None = None,
    show_user: bool = False,
) -> Renderer:
    """A renderer for ``mode`` (``final``/``live``/``text``/``quiet``)."""
    doc = RunDocument(format=format, show_user=show_user)
    if mode == "live":
        return LiveRenderer(doc, on_stop=on_stop)
    if mode == "text":
        return TextRenderer(doc)
    if mode == "quiet":
        return QuietRenderer(doc)
    return FinalRenderer(doc)
