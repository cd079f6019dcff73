"""A run as a document of *parts*: what every renderer (live widget, final output, terminal) shows.

Agent events (api-contract §5) are folded into items — assistant text, thinking, tool cards,
per-turn footers, retry status lines, error/stopped banners, steering messages. Each item owns
parts with deterministic ids (``i3``, ``i3.7``, ``i3.t``…; never random), and :meth:`take_ops`
returns only what changed since the last call: a finished text piece is rendered and sanitized
once and emitted once; the open tail and small status parts are re-emitted when they change.

The document reads ``delta`` from events, never the provider's live ``partial`` (which may run
ahead within a batch, §5.3); ``message_end`` then reconciles with the final message.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from typing import Any

from ._markdown import BlockSplitter, markdown_html, plain_html

Op = list[Any]  # [part_id, parent_id | None, html, is_tail]


def result_text(result: Any) -> str:
    """The text blocks of a tool result (images are named, not inlined)."""
    if result is None:
        return ""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        if getattr(block, "type", None) == "text":
            parts.append(getattr(block, "text", "") or "")
        elif getattr(block, "type", None) == "image":
            parts.append(f"[image {getattr(block, 'mime_type', '') or ''}]".replace(" ]", "]"))
    return "".join(parts)


def message_text(message: Any) -> str:
    return "".join(
        getattr(b, "text", "") or ""
        for b in getattr(message, "content", None) or []
        if getattr(b, "type", None) == "text"
    )


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


class Item:
    """Base: one visible thing. ``parts()`` are (id, html) of re-putable parts."""

    def __init__(self, doc: RunDocument, id: str) -> None:
        self.doc = doc
        self.id = id
        self._sent: dict[str, str] = {}

    def live_ops(self) -> list[Op]:
        ops: list[Op] = []
        for part_id, fragment in self.parts():
            if self._sent.get(part_id) != fragment:
                self._sent[part_id] = fragment
                ops.append([part_id, None if part_id == self.id else self.id, fragment, False])
        return ops

    def parts(self) -> list[tuple[str, str]]:
        return [(self.id, self.html())]

    def html(self) -> str:
        raise NotImplementedError

    def markdown(self) -> str:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError


class TextItem(Item):
    """Assistant text or thinking. Live: finished pieces once, the tail re-sent."""

    def __init__(self, doc: RunDocument, id: str, thinking: bool) -> None:
        super().__init__(doc, id)
        self.thinking = thinking
        self.chunks: list[str] = []
        self.splitter = BlockSplitter(doc.max_tail)
        self.final: str | None = None
        self.pieces = 0
        self.created = False
        self.closed = False
        self.tail_html = ""

    @property
    def full_text(self) -> str:
        if self.final is None:
            self.final = "".join(self.chunks)
            self.chunks = [self.final]
        return self.final

    def feed(self, delta: str) -> None:
        self.chunks.append(delta)
        self.final = None
        self.splitter.feed(delta)

    def finish(self, text: str | None) -> None:
        streamed = "".join(self.chunks)
        if text is not None and text != streamed:
            if text.startswith(streamed):
                self.feed(text[len(streamed) :])
            else:  # deltas were lost or rewritten: start the item over from the final text
                self.doc._replace_item(self)
                return
        self.closed = True
        self.doc._mark(self)

    def _render(self, source: str) -> str:
        return (
            plain_html(source)
            if self.doc.format == "text" and not self.thinking
            else markdown_html(source)
        )

    def live_ops(self) -> list[Op]:
        ops: list[Op] = []
        if not self.created:
            self.created = True
            if self.thinking:
                shell = '<details class="ta-thinking"><summary>Thinking</summary><div data-slot></div></details>'
            else:
                shell = '<div class="ta-text" data-slot></div>'
            ops.append([self.id, None, shell, False])
        pieces = self.splitter.finish() if self.closed else self.splitter.take_finished()
        for source, continuation in pieces:
            fragment = self._render(source)
            cls = "ta-piece ta-cont" if continuation else "ta-piece"
            ops.append(
                [f"{self.id}.{self.pieces}", self.id, f'<div class="{cls}">{fragment}</div>', False]
            )
            self.pieces += 1
        tail = "" if self.closed else self.splitter.tail_source()
        tail_html = self._render(tail) if tail.strip() else ""
        if tail_html != self.tail_html:
            self.tail_html = tail_html
            ops.append([f"{self.id}.t", self.id, tail_html, True])
        return ops

    def html(self) -> str:
        body = self._render(self.full_text)
        if self.thinking:
            return f'<details class="ta-thinking"><summary>Thinking</summary>{body}</details>'
        return f'<div class="ta-text">{body}</div>'

    def markdown(self) -> str:
        text = self.full_text.strip("\n")
        if self.thinking:
            quoted = "\n".join(
                f"> {line}" if line else ">" for line in escape_markdown_html(text).split("\n")
            )
            return f"> **Thinking**\n>\n{quoted}"
        if self.doc.format == "text":
            return "```text\n" + text.replace("```", "`\u200b``") + "\n```"
        return escape_markdown_html(text)

    def text(self) -> str:
        return "" if self.thinking else self.full_text.strip("\n")


_STATUS_LABEL = {
    "streaming": "writing arguments",
    "pending": "pending",
    "running": "running",
    "done": "done",
    "error": "error",
    "aborted": "aborted",
    "denied": "denied",
}
_ARGS_PREVIEW = 1500
_RESULT_LIMIT = 20000


class ToolCard(Item):
    def __init__(self, doc: RunDocument, id: str, name: str) -> None:
        super().__init__(doc, id)
        self.name = name
        self.call_id = ""
        self.raw_args: list[str] = []
        self.raw_len = 0
        self.args: dict[str, Any] | None = None
        self.status = "streaming"
        self.partial = ""
        self.result: str | None = None
        self.started: float | None = None
        self.duration: float | None = None

    def args_text(self) -> str:
        if self.args is not None:
            return json.dumps(self.args, indent=2, ensure_ascii=False, default=str)
        raw = "".join(self.raw_args)
        self.raw_args = [raw]
        return raw if len(raw) <= _ARGS_PREVIEW else "…" + raw[-_ARGS_PREVIEW:]

    def _duration_html(self) -> str:
        if self.duration is None:
            return ""
        return f' <span class="ta-time">{self.duration:.2f} s</span>'

    def parts(self) -> list[tuple[str, str]]:
        head = (
            f'<span class="ta-tool-name">{_esc(self.name)}</span> '
            f'<span class="ta-badge ta-{self.status}">{_STATUS_LABEL.get(self.status, self.status)}</span>'
            f"{self._duration_html()}"
        )
        out = [
            (self.id, '<div class="ta-card" data-slot></div>'),
            (f"{self.id}.h", f'<div class="ta-card-head">{head}</div>'),
            (f"{self.id}.a", f'<div class="ta-args">{plain_html(self.args_text())}</div>'),
        ]
        if self.partial and self.result is None:
            out.append(
                (
                    f"{self.id}.p",
                    f'<div class="ta-progress">{plain_html(self._clip(self.partial))}</div>',
                )
            )
        else:
            out.append((f"{self.id}.p", ""))
        if self.result is not None:
            out.append(
                (
                    f"{self.id}.r",
                    f'<div class="ta-result">{plain_html(self._clip(self.result))}</div>',
                )
            )
        return out

    def live_ops(self) -> list[Op]:
        ops: list[Op] = []
        for part_id, fragment in self.parts():
            if part_id == self.id:
                # the shell holds the children: re-putting it would drop them, so it goes once
                if part_id not in self._sent:
                    self._sent[part_id] = fragment
                    ops.append([part_id, None, fragment, False])
            elif self._sent.get(part_id, "") != fragment:
                self._sent[part_id] = fragment
                ops.append([part_id, self.id, fragment, False])
        return ops

    @staticmethod
    def _clip(text: str) -> str:
        return (
            text
            if len(text) <= _RESULT_LIMIT
            else text[:_RESULT_LIMIT] + f"\n… ({len(text) - _RESULT_LIMIT} more characters)"
        )

    def html(self) -> str:
        inner = "".join(fragment for part_id, fragment in self.parts()[1:])
        return f'<div class="ta-card ta-card-{self.status}">{inner}</div>'

    def markdown(self) -> str:
        args = json.dumps(
            self.args if self.args is not None else {}, ensure_ascii=False, default=str
        )
        time_note = f" ({self.duration:.2f} s)" if self.duration is not None else ""
        lines = [
            f"**Tool `{self.name}`** — {self.status}{time_note}",
            "",
            f"`{args}`".replace("``", "` `"),
        ]
        if self.result is not None:
            fence = "````" if "```" in self.result else "```"
            lines += ["", fence, self._clip(self.result), fence]
        return "\n".join(lines)

    def text(self) -> str:
        args = json.dumps(
            self.args if self.args is not None else {}, ensure_ascii=False, default=str
        )
        line = f"[tool {self.name}({args}) -> {self.status}]"
        if self.result is not None:
            line += " " + self._clip(self.result)
        return line


class NoteItem(Item):
    """A small part: footer, status line, banner, steering message."""

    def __init__(self, doc: RunDocument, id: str, kind: str, text: str, detail: str = "") -> None:
        super().__init__(doc, id)
        self.kind = kind
        self.body = text
        self.detail = detail  # variable text (timings) kept out of text/plain

    def html(self) -> str:
        if not self.body:
            return ""
        if self.kind == "user":
            return f'<div class="ta-user">{markdown_html(self.body)}</div>'
        if self.kind == "confirm":  # body: tool name, detail: the card id the answer refers to
            key = _esc(self.detail)
            return (
                f'<div class="ta-confirm">Run tool <b>{_esc(self.body)}</b>? '
                f'<button data-confirm="{key}" data-ok="1">Approve</button> '
                f'<button data-confirm="{key}" data-ok="0">Deny</button></div>'
            )
        detail = f' <span class="ta-time">{_esc(self.detail)}</span>' if self.detail else ""
        return f'<div class="ta-{self.kind}">{_esc(self.body)}{detail}</div>'

    def markdown(self) -> str:
        if not self.body or self.kind == "confirm":
            return ""
        detail = f" · {self.detail}" if self.detail else ""
        if self.kind == "user":
            return "\n".join(f"> {line}" for line in escape_markdown_html(self.body).split("\n"))
        if self.kind == "banner":
            return f"**{escape_markdown_html(self.body)}**"
        return f"*{escape_markdown_html(self.body)}{detail}*"

    def text(self) -> str:
        if not self.body or self.kind == "confirm":
            return ""
        if self.kind == "user":
            return f"> {self.body}"
        return f"[{self.body}]"


def escape_markdown_html(text: str) -> str:
    """Neutralise raw HTML in untrusted Markdown outside code (``<`` → ``&lt;``).

    ``text/markdown`` outputs are rendered by front ends that may not sanitize trusted outputs.
    """
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
            out.append(line)
            continue
        if fence is not None or line.startswith("    "):
            out.append(line)
            continue
        segments = line.split("`")
        for i in range(0, len(segments), 2):  # even segments are outside code spans
            segments[i] = segments[i].replace("<", "&lt;")
        out.append("`".join(segments))
    return "\n".join(out)


def usage_line(usage: dict[str, Any] | None, stop_reason: str | None) -> str:
    usage = usage or {}
    parts = [f"in {usage.get('input', 0)}", f"out {usage.get('output', 0)}"]
    if usage.get("cache_read"):
        parts.append(f"cache read {usage['cache_read']}")
    if usage.get("cache_write"):
        parts.append(f"cache write {usage['cache_write']}")
    cost = (usage.get("cost") or {}).get("total") if isinstance(usage.get("cost"), dict) else None
    if cost:
        parts.append(f"${cost:.4f}")
    if stop_reason:
        parts.append(stop_reason)
    return "tokens " + " · ".join(parts)


def error_banner(message: str) -> str:
    text = f"Error: {message}"
    if "context window exceeded" in message.lower():
        text += " — the conversation no longer fits the model's context window; run `%agent reset` or start a fresh one with `%%agent --new`."
    return text


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
    ) -> None:
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

    # -- building ----------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._serial += 1
        return f"{self.id_prefix}i{self._serial}"

    def _add(self, item: Item) -> Item:
        self.items.append(item)
        self._mark(item)
        return item

    def _mark(self, item: Item) -> None:
        if id(item) not in self._dirty_ids:
            self._dirty_ids.add(id(item))
            self._dirty.append(item)
        if self.on_change is not None:
            self.on_change()

    def _replace_item(self, item: TextItem) -> None:
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
        self._mark(fresh)

    def note(self, kind: str, text: str, detail: str = "") -> NoteItem:
        return self._add(NoteItem(self, self._new_id(), kind, text, detail))  # type: ignore[return-value]

    def _set_status(self, text: str) -> None:
        if self._status is None:
            self._status = self.note("status", text)
        else:
            self._status.body = text
            self._mark(self._status)

    def _clear_status(self) -> None:
        if self._status is not None and self._status.body:
            self._status.body = ""
            self._mark(self._status)

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

    def _on_agent_start(self, event: Any) -> None:
        self._turn_started = self.clock()

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
            item = self._block(ci, "thinking" if kind.startswith("thinking") else "text")
            assert isinstance(item, TextItem)
            if kind.endswith("_delta") and inner.delta:
                item.feed(inner.delta)
                self._mark(item)
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
            if kind == "tool_call_delta" and inner.delta:
                card.raw_args.append(inner.delta)
            elif kind == "tool_call_end" and call is not None:
                card.args = call.arguments if call.partial_json is None else None
                if card.args is None:
                    card.raw_args = [call.partial_json or ""]
                card.status = "pending"
            self._mark(card)

    def _on_message_end(self, event: Any) -> None:
        message = event.message
        role = getattr(message, "role", None)
        if role == "user":
            self._users_seen += 1
            if self.show_user or self._users_seen > 1:
                label = "" if self.show_user and self._users_seen == 1 else "steer: "
                self.note("user", label + message_text(message))
            return
        if role != "assistant":
            return
        self.last_assistant = message
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
                self._mark(card)
        self._clear_status()
        reason = message.stop_reason
        if reason == "aborted":
            self.stopped = True
            for card in self._cards.values():
                if card.status in ("pending", "streaming", "running"):
                    card.status = "aborted"
                    self._mark(card)
            self.note("banner", "stopped")
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
        self._mark(card)

    def _on_tool_execution_update(self, event: Any) -> None:
        card = self.card(event.tool_call_id, event.tool_name)
        card.partial = result_text(event.partial_result)
        self._mark(card)

    def _on_tool_execution_end(self, event: Any) -> None:
        card = self.card(event.tool_call_id, event.tool_name)
        card.result = result_text(event.result)
        if event.is_error:
            if card.result == "Tool execution aborted":
                card.status = "aborted"
            elif card.result == "Tool call denied by the user":
                card.status = "denied"
            else:
                card.status = "error"
        else:
            card.status = "done"
        self._mark(card)

    def tool_finished(self, call_id: str, ok: bool, duration: float) -> None:
        """From the wrapped ``execute``: this tool settled (its end event comes after the batch)."""
        card = self.card(call_id)
        card.duration = duration
        if card.status in ("running", "pending", "streaming"):
            card.status = "done" if ok else "error"
        self._mark(card)

    def _on_turn_end(self, event: Any) -> None:
        message = event.message
        if getattr(message, "role", None) != "assistant":
            return
        elapsed = self.clock() - (self._turn_started or self.clock())
        self.note("footer", usage_line(message.usage, message.stop_reason), f"{elapsed:.1f} s")

    def _on_agent_end(self, event: Any) -> None:
        self.ended = True
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
