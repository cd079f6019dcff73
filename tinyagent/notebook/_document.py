"""A run as a document of *parts*: what every renderer (live widget, final output, terminal) shows.

Agent events (docs/events.md#agent-events) are folded into items — assistant text, thinking, tool
cards, per-turn footers, retry status lines, error/stopped banners, steering messages. Each item
owns parts with deterministic ids (``i3``, ``i3.7``, ``i3.t``…; never random), and :meth:`take_ops`
returns only what changed since the last call: a finished text piece is rendered and sanitized once
and emitted once; the open tail and small status parts are re-emitted when they change.

The document reads ``delta`` from events, never the provider's live ``partial`` (which may run ahead
within a batch, docs/architecture.md#partial); ``message_end`` then reconciles with the final
message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ._approval import SKIPPED
from ._items import (
    STOPPED_BANNER,
    Item,
    NoteItem,
    Op,
    TextItem,
    ToolCard,
    error_banner,
    message_text,
    result_images,
    result_text,
    usage_line,
    user_parts,
)

__all__ = [
    "Item",
    "NoteItem",
    "Op",
    "RunDocument",
    "TextItem",
    "ToolCard",
    "message_text",
    "result_text",
]


WAITING = "waiting for the model…"


class RunDocument:
    """Folds agent events into items; see the module docstring."""

    def __init__(
        self,
        *,
        format: str = "markdown",
        show_user: bool = False,
        max_tail: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        id_prefix: str = "",
        transcript: bool = False,
    ) -> None:
        self.transcript = transcript  # a stored conversation: every user message is a turn
        self.id_prefix = id_prefix
        self.format = format
        self.show_user = show_user
        self.max_tail = max_tail
        self.clock = clock
        self.items: list[Item] = []
        self._serial = 0
        self._dirty: list[Item] = []
        self._dirty_ids: set[int] = set()
        self._blocks: dict[tuple[int, int], Item] = {}
        self._cards: dict[str, ToolCard] = {}
        self._msg_no = 0
        self._status: NoteItem | None = None
        self._turn_started: float | None = None
        self._users_seen = 0
        self._removed: list[Op] = []
        self.ended = False
        self.last_assistant: Any = None
        self.stopped = False
        self.on_change: Callable[[], None] | None = None
        # what the run is doing, in words, for the live status line ("" when it is not running)
        self.activity = ""
        self._running_tools: dict[str, str] = {}  # call id -> tool name, while it runs

    # -- building ----------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._serial += 1
        return f"{self.id_prefix}i{self._serial}"

    def _add(self, item: Item) -> Item:
        self.items.append(item)
        self.mark_changed(item)
        return item

    def mark_changed(self, item: Item) -> None:
        if id(item) not in self._dirty_ids:
            self._dirty_ids.add(id(item))
            self._dirty.append(item)
        if self.on_change is not None:
            self.on_change()

    def replace_text_item(self, item: TextItem) -> None:
        """Re-create a text item whose streamed text disagrees with the final message."""
        text = item.full_text if item.final is not None else "".join(item.chunks)
        index = self.items.index(item)
        fresh = TextItem(self, self._new_id(), item.thinking)
        self._removed.append([item.id, None, "", False])
        self.items[index] = fresh
        for key, value in list(self._blocks.items()):
            if value is item:
                self._blocks[key] = fresh
        fresh.feed(text)
        fresh.closed = True
        self.mark_changed(fresh)

    def note(self, kind: str, text: str, detail: str = "") -> NoteItem:
        return self._add(NoteItem(self, self._new_id(), kind, text, detail))  # type: ignore[return-value]

    def _set_status(self, text: str) -> None:
        if self._status is None:
            self._status = self.note("status", text)
        else:
            self._status.body = text
            self.mark_changed(self._status)

    def _clear_status(self) -> None:
        if self._status is not None and self._status.body:
            self._status.body = ""
            self.mark_changed(self._status)

    def _block(self, ci: int, kind: str, name: str = "") -> Item:
        key = (self._msg_no, ci)
        item = self._blocks.get(key)
        if item is None:
            if kind == "tool":
                item = ToolCard(self, self._new_id(), name)
            else:
                item = TextItem(self, self._new_id(), thinking=(kind == "thinking"))
            self._blocks[key] = item
            self._add(item)
        return item

    def card(self, call_id: str, name: str = "") -> ToolCard:
        card = self._cards.get(call_id)
        if card is None:
            card = ToolCard(self, self._new_id(), name)
            card.call_id = call_id
            self._cards[call_id] = card
            self._add(card)
        return card

    # -- events ------------------------------------------------------------------------------

    def apply(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event)

    def _on_turn_start(self, event: Any) -> None:
        self._turn_started = self.clock()
        self.activity = WAITING

    def _on_agent_start(self, event: Any) -> None:
        self._turn_started = self.clock()
        self.activity = WAITING

    def _on_message_start(self, event: Any) -> None:
        if getattr(event.message, "role", None) == "assistant":
            self._msg_no += 1

    def _on_message_update(self, event: Any) -> None:
        inner = event.assistant_message_event
        if inner is None:
            return
        kind = inner.type
        ci = inner.content_index if inner.content_index is not None else 0
        if kind == "retry":
            reason = inner.reason or "request failed"
            delay = inner.delay or 0
            label = "rate-limited" if "429" in reason else reason
            self._set_status(f"{label}, retrying in {delay:g} s (attempt {inner.attempt or 1})")
            self.activity = self._status.body if self._status is not None else WAITING
            return
        if kind in (
            "text_start",
            "text_delta",
            "text_end",
            "thinking_start",
            "thinking_delta",
            "thinking_end",
        ):
            self._clear_status()
            self.activity = "thinking…" if kind.startswith("thinking") else "writing the answer…"
            item = self._block(ci, "thinking" if kind.startswith("thinking") else "text")
            assert isinstance(item, TextItem)
            if kind.endswith("_delta") and inner.delta:
                item.feed(inner.delta)
                self.mark_changed(item)
            elif kind.endswith("_end"):
                content = inner.content
                text = (
                    content
                    if isinstance(content, str)
                    else getattr(content, "text", None) or getattr(content, "thinking", None)
                )
                item.finish(text)
            return
        if kind in ("tool_call_start", "tool_call_delta", "tool_call_end"):
            self._clear_status()
            call = inner.tool_call
            card = self._block(ci, "tool", getattr(call, "name", "") or "")
            assert isinstance(card, ToolCard)
            if call is not None:
                if call.name:
                    card.name = call.name
                if call.id and not card.call_id:
                    card.call_id = call.id
                    self._cards[call.id] = card
            self.activity = f"writing a call to {card.name}…" if card.name else "writing a tool call…"
            if kind == "tool_call_delta" and inner.delta:
                card.raw_args.append(inner.delta)
            elif kind == "tool_call_end" and call is not None:
                card.args = call.arguments if call.partial_json is None else None
                if card.args is None:
                    card.raw_args = [call.partial_json or ""]
                card.status = "pending"
            self.mark_changed(card)

    def _on_message_end(self, event: Any) -> None:
        message = event.message
        role = getattr(message, "role", None)
        if role == "user":
            self._users_seen += 1
            text, attached, images = user_parts(message)
            if self._users_seen > 1 and not self.transcript:  # injected mid-run: steering
                text = "steer: " + text
            elif not (self.transcript or self.show_user):
                return
            note = self.note("user", text)
            note.attached, note.images = attached, images
            return
        if role != "assistant":
            return
        self.last_assistant = message
        calls = any(getattr(b, "type", None) == "tool_call" for b in message.content or [])
        self.activity = "calling tools…" if calls else WAITING
        for ci, block in enumerate(message.content or []):
            kind = getattr(block, "type", None)
            if kind == "text" and (block.text or (self._msg_no, ci) in self._blocks):
                item = self._block(ci, "text")
                assert isinstance(item, TextItem)
                if not item.closed:
                    item.finish(block.text or "")
            elif kind == "thinking" and (block.thinking or (self._msg_no, ci) in self._blocks):
                item = self._block(ci, "thinking")
                assert isinstance(item, TextItem)
                if not item.closed:
                    item.finish(block.thinking or "")
            elif kind == "tool_call":
                card = self._block(ci, "tool", block.name or "")
                assert isinstance(card, ToolCard)
                card.name = block.name or card.name
                if block.id:
                    card.call_id = block.id
                    self._cards[block.id] = card
                if block.partial_json is None:
                    card.args = block.arguments
                if card.status == "streaming":
                    card.status = "pending"
                self.mark_changed(card)
        self._clear_status()
        reason = message.stop_reason
        if reason == "aborted":
            self.stopped = True
            for card in self._cards.values():
                if card.status in ("pending", "streaming", "running"):
                    card.status = "aborted"
                    self.mark_changed(card)
            self.note("banner", STOPPED_BANNER)
        elif reason == "error":
            self.note("banner", error_banner(message.error_message or "unknown error"))

    def _on_tool_execution_start(self, event: Any) -> None:
        card = self.card(event.tool_call_id, event.tool_name)
        if event.args is not None and card.args is None:
            card.args = event.args
        if card.status in ("streaming", "pending"):
            card.status = "running"
        if card.started is None:
            card.started = self.clock()
        self._running_tools[event.tool_call_id] = card.name
        self._tool_activity()
        self.mark_changed(card)

    def _tool_activity(self) -> None:
        names = list(dict.fromkeys(self._running_tools.values()))
        if not names:
            self.activity = WAITING
        elif len(names) == 1:
            self.activity = f"running {names[0]}…"
        else:
            self.activity = f"running {', '.join(names)}…"

    def _on_tool_execution_update(self, event: Any) -> None:
        card = self.card(event.tool_call_id, event.tool_name)
        card.partial = result_text(event.partial_result)
        self.mark_changed(card)

    def _on_tool_execution_end(self, event: Any) -> None:
        card = self.card(event.tool_call_id, event.tool_name)
        self._running_tools.pop(event.tool_call_id, None)
        self._tool_activity()
        card.result = result_text(event.result)
        card.images = result_images(event.result)
        if event.is_error:
            if card.result == "Tool execution aborted":
                card.status = "aborted"
            elif card.result == "Tool call denied by the user":
                card.status = "denied"
            elif card.result == SKIPPED:
                card.status = "skipped"
            else:
                card.status = "error"
        else:
            card.status = "done"
        self.mark_changed(card)

    def tool_finished(self, call_id: str, ok: bool, duration: float) -> None:
        """From the wrapped ``execute``: this tool settled (its end event comes after the batch)."""
        card = self.card(call_id)
        self._running_tools.pop(call_id, None)
        self._tool_activity()
        card.duration = duration
        if card.status in ("running", "pending", "streaming"):
            card.status = "done" if ok else "error"
        self.mark_changed(card)

    def _on_turn_end(self, event: Any) -> None:
        message = event.message
        if getattr(message, "role", None) != "assistant":
            return
        elapsed = self.clock() - (self._turn_started or self.clock())
        self.note("footer", usage_line(message.usage, message.stop_reason), f"{elapsed:.1f} s")

    def _on_agent_end(self, event: Any) -> None:
        self.ended = True
        self.activity = ""
        self._clear_status()

    # -- output ------------------------------------------------------------------------------

    def take_ops(self) -> list[Op]:
        ops, self._removed = list(self._removed), []
        dirty, self._dirty, self._dirty_ids = self._dirty, [], set()
        for item in dirty:
            ops.extend(item.live_ops())
        return ops

    def visible(self) -> list[Item]:
        return [item for item in self.items if not (isinstance(item, NoteItem) and not item.body)]

    def static_html(self) -> str:
        return "".join(item.html() for item in self.visible())

    def static_markdown(self) -> str:
        return "\n\n".join(m for m in (item.markdown() for item in self.visible()) if m)

    def static_text(self) -> str:
        return "\n\n".join(t for t in (item.text() for item in self.visible()) if t)
