"""``AgentView``: the one anywidget behind live run output and the chat panel
(docs/notebook.md#widget-protocol).

Why one anywidget with one state trait plus custom messages: ipywidgets composition (an HTML
widget per block, a VBox around them) resends whole trait values and costs a comm message per
widget touched, so a streamed answer would cost O(n²) bytes and several messages per update. Here
the kernel renders and sanitizes every part itself and sends *only changed parts* in one custom
message per flush (``{"ops": [...]}``): a finished block once, the open tail again while it grows.
The small ``state`` trait carries controls (running, status, usage, model list, queued steering);
the full document travels only in a full state sync (widget open or ``request_state``), so a view
opened later, or a reloaded page with a live kernel, still shows everything. The ESM is
hand-written and shipped as package data: no npm build.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ._document import Op

logger = logging.getLogger("tinyagent.notebook")

_HERE = Path(__file__).parent


# One stylesheet for the live view and the static rendering (which embeds it). Code tokens are
# coloured there from the editor's theme variables (Pygments' short classes), not by a Pygments
# style: a fixed style's light background and dark tokens would not follow a dark theme.
STYLE = (_HERE / "_widget.css").read_text(encoding="utf-8")


# one ES module from three files (no bundler): the Copy buttons, the panel's composer, the view
ESM = "\n".join(
    (_HERE / name).read_text(encoding="utf-8")
    for name in ("_widget_copy.js", "_widget_composer.js", "_widget.js")
)


class AgentView(anywidget.AnyWidget):  # type: ignore[misc]
    _esm = ESM
    _css = STYLE
    state = traitlets.Dict().tag(sync=True)

    def __init__(self, kind: str = "run", **state: Any) -> None:
        # set before the base __init__ opens the comm (open calls get_state)
        self._parts: dict[str, list[Any]] = {}
        # Revision of the document: bumped by every put and reset, sent with ops and full syncs so
        # a view can tell a stale full sync (e.g. a request_state answered before the latest ops
        # reached it) from a newer one and never rebuild itself backwards.
        self._rev = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], object]] = {}
        # a per-widget key for the view's part store (never shown in text/plain)
        super().__init__(state={"kind": kind, "key": uuid.uuid4().hex, **state})
        self._handlers["sync"] = self._resync
        self.on_msg(self._dispatch)

    def __repr__(self) -> str:
        # stable text/plain (nbval compares it at first display): no address, no model id
        return f"AgentView({self.state.get('kind', 'run')})"

    def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state(key=key, drop_defaults=drop_defaults)
        if key is None and "state" in state and hasattr(self, "_parts"):
            # a full sync (open / request_state) carries the whole document once
            state["state"] = {**state["state"], "doc": list(self._parts.values()), "rev": self._rev}
        return state

    # -- kernel → view -----------------------------------------------------------------------

    def send_ops(self, ops: list[Op]) -> None:
        """Put parts; one comm message however many parts changed."""
        if not ops:
            return
        for op in ops:
            self._parts[op[0]] = op
        self._rev += 1
        if self.comm is not None:
            self.send({"ops": ops, "rev": self._rev})

    def remove_parts(self, prefix: str) -> None:
        """Remove every part whose id starts with ``prefix`` (one run's parts, e.g. ``r3.``).

        The top-level ones are put empty (views drop them and the parts in their slots) and
        kept so; the parts inside them are forgotten, so no later full sync brings them back.
        """
        gone = [part_id for part_id in self._parts if part_id.startswith(prefix)]
        tops = [p for p in (self._parts[i] for i in gone) if not str(p[1] or "").startswith(prefix)]
        for part_id in gone:
            del self._parts[part_id]
        self.send_ops([[op[0], op[1], "", False] for op in tops])

    def update_state(self, **changes: Any) -> None:
        """Change control fields; one comm message, and none when nothing changed."""
        new = {**self.state, **changes}
        new.pop("doc", None)
        new.pop("rev", None)
        if new != self.state:
            self.state = new

    def document(self) -> list[list[Any]]:
        return list(self._parts.values())

    def reset_document(self) -> None:
        """Forget every part and make all views rebuild (e.g. the panel's Clear)."""
        self._parts.clear()
        self._rev += 1
        self.state = {**self.state, "doc": [], "rev": self._rev}
        # keep the trait small again; views already rebuilt from the empty doc
        self.state = {k: v for k, v in self.state.items() if k not in ("doc", "rev")}

    def _resync(self, _msg: dict[str, Any]) -> None:
        """A view's store was created: send every part once (puts are idempotent)."""
        if self._parts and self.comm is not None:
            self.send({"ops": list(self._parts.values()), "rev": self._rev})

    # -- view → kernel -----------------------------------------------------------------------

    def on_event(self, name: str, handler: Callable[[dict[str, Any]], object]) -> None:
        self._handlers[name] = handler

    def _dispatch(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        handler = self._handlers.get(str(content.get("event")))
        if handler is None:
            return
        try:
            handler(content)
        except Exception:  # a UI callback must never kill the comm handler
            logger.exception("tinyagent widget handler %r failed", content.get("event"))
