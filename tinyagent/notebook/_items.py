"""The visible items of a run: assistant text and thinking, tool cards, notes (footers, status
lines, banners, user/steering messages).

Each item renders itself three ways: live parts (``live_ops``: only what changed), static HTML,
Markdown and plain text. Model text is always rendered through the sanitizing Markdown path.
"""

from __future__ import annotations

import html
import json
import re
import time
from typing import TYPE_CHECKING, Any

from ._markdown import COPY_BUTTON, BlockSplitter, markdown_html, plain_html

if TYPE_CHECKING:
    from ._document import RunDocument

Op = list[Any]  # [part_id, parent_id | None, html, is_tail]


def result_text(result: Any) -> str:
    """The text blocks of a tool result (images are named, not inlined)."""
    if result is None:
        return ""
    parts: list[str] = []
    images: list[str] = []
    for block in getattr(result, "content", None) or []:
        if getattr(block, "type", None) == "text":
            parts.append(getattr(block, "text", "") or "")
        elif getattr(block, "type", None) == "image":
            images.append(f"[image {getattr(block, 'mime_type', '') or ''}]".replace(" ]", "]"))
    text = "".join(parts)
    if images and not _IMAGES_NAMED.search(text):  # run_python's text already counts them
        text += ("\n" if text else "") + " ".join(images)
    return text


_IMAGES_NAMED = re.compile(r"\[\d+ images? attached\]$")
_IMAGE_URL = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+")


def result_images(result: Any) -> list[str]:
    """The ``data:`` image URLs of a tool result (what a card shows; other URLs are dropped)."""
    urls = []
    for block in getattr(result, "content", None) or []:
        url = getattr(block, "url", None) if getattr(block, "type", None) == "image" else None
        if isinstance(url, str) and _IMAGE_URL.fullmatch(url):
            urls.append(url)
    return urls


def message_text(message: Any) -> str:
    return "".join(
        getattr(b, "text", "") or ""
        for b in getattr(message, "content", None) or []
        if getattr(b, "type", None) == "text"
    )


_ATTACHED_VARIABLE = re.compile(r"Variable (@\w+) \(from inspect_variable\):")


def user_parts(message: Any) -> tuple[str, list[str], list[str]]:
    """A user message as the transcript shows it: the typed text, a label per attached text block
    (``@df`` for a variable's summary) and the attached images' ``data:`` URLs."""
    texts = [
        getattr(b, "text", "") or ""
        for b in getattr(message, "content", None) or []
        if getattr(b, "type", None) == "text"
    ]
    labels = []
    for block in texts[1:]:
        first = block.split("\n", 1)[0]
        named = _ATTACHED_VARIABLE.match(first)
        labels.append(named.group(1) if named else first[:60])
    return (texts[0] if texts else ""), labels, result_images(message)


def code_box(code: str) -> str:
    """Code shown as code, with a Copy button (the ``.ta-code`` markup the view's JS handles)."""
    return f'<div class="ta-code">{COPY_BUTTON}{plain_html(code)}</div>'


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
        # wall-clock start (the view ticks "Thinking… 3 s" from it) and the measured duration
        self.started_at = time.time()
        self.started = doc.clock()
        self.duration: float | None = None

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
                self.doc.replace_text_item(self)
                return
        self.closed = True
        self.duration = self.doc.clock() - self.started
        self.doc.mark_changed(self)

    def _render(self, source: str) -> str:
        return (
            plain_html(source)
            if self.doc.format == "text" and not self.thinking
            else markdown_html(source)
        )

    def _summary(self, live: bool = True) -> str:
        """Thinking's summary: a live "Thinking…" the view ticks while it streams, then its time."""
        if live and not self.closed:
            since = int(self.started_at * 1000)
            return (
                '<summary class="ta-thinking-live">Thinking… '
                f'<span class="ta-elapsed" data-since="{since}"></span></summary>'
            )
        took = "" if self.duration is None else f' <span class="ta-time">{self.duration:.1f} s</span>'
        return f"<summary>Thinking{took}</summary>"

    def live_ops(self) -> list[Op]:
        ops: list[Op] = []
        if self.thinking:
            # the shell is re-put when the summary changes (live → done); the view keeps the
            # parts in its slot and whether the reader opened it
            shell = f'<details class="ta-thinking">{self._summary()}<div data-slot></div></details>'
            if self._sent.get(self.id) != shell:
                self._sent[self.id] = shell
                ops.append([self.id, None, shell, False])
            self.created = True
        elif not self.created:
            self.created = True
            ops.append([self.id, None, '<div class="ta-text" data-slot></div>', False])
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
            return f'<details class="ta-thinking">{self._summary(live=False)}{body}</details>'
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
    "skipped": "skipped",
}
_ARGS_PREVIEW = 1500
#: the buttons of a confirm note (``--confirm``: run/skip; ``run_python``: all three)
_CHOICE_LABEL = {"run": "Run", "skip": "Skip", "always": "Always in this conversation"}
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
        self.images: list[str] = []  # data: URLs (run_python's figures)
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
        code = self.name == "run_python" and isinstance((self.args or {}).get("code"), str)
        out = [
            (self.id, '<div class="ta-card" data-slot></div>'),
            (f"{self.id}.h", f'<div class="ta-card-head">{head}</div>'),
            (
                f"{self.id}.a",
                '<details class="ta-args" open>'
                f"<summary>{'Code' if code else 'Arguments'}</summary>{self._args_html()}</details>",
            ),
        ]
        if self.partial and self.result is None:
            out.append(
                (
                    f"{self.id}.p",
                    '<div class="ta-progress"><div class="ta-label">Output so far</div>'
                    f"{plain_html(self._clip(self.partial))}</div>",
                )
            )
        else:
            out.append((f"{self.id}.p", ""))
        if self.result is not None:
            label = "Error" if self.status == "error" else "Result"
            out.append(
                (
                    f"{self.id}.r",
                    f'<details class="ta-result" open><summary>{label}</summary>'
                    f"{plain_html(self._clip(self.result))}</details>",
                )
            )
        images = "".join(
            f'<img src="{url}" alt="image from {_esc(self.name)}">' for url in self.images
        )
        out.append((f"{self.id}.i", f'<div class="ta-images">{images}</div>' if images else ""))
        return out

    def _args_html(self) -> str:
        code = self.args.get("code") if isinstance(self.args, dict) else None
        if self.name == "run_python" and isinstance(code, str):
            return code_box(code)  # the code as code, with a Copy button, not as JSON
        return plain_html(self.args_text())

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
        self.choices: tuple[str, ...] = ("run", "skip")  # a "confirm" note's buttons
        self.attached: list[str] = []  # a user note's attachments: labels of text blocks
        self.images: list[str] = []  # and its images (data: URLs)

    def html(self) -> str:
        if not self.body:
            return ""
        if self.kind == "user":
            chips = "".join(
                f'<span class="ta-chip"><span class="ta-chip-label">{_esc(label)}</span></span>'
                for label in self.attached
            )
            chips += "".join(
                f'<span class="ta-chip"><img src="{url}" alt="attached image"></span>'
                for url in self.images
            )
            extra = f'<div class="ta-attachments">{chips}</div>' if chips else ""
            return f'<div class="ta-user">{markdown_html(self.body)}{extra}</div>'
        if self.kind == "confirm":  # body: tool name, detail: the card id the answer refers to
            key = _esc(self.detail)
            buttons = " ".join(
                f'<button data-confirm="{key}" data-choice="{choice}" '
                f'data-ok="{1 if choice != "skip" else 0}">{_CHOICE_LABEL[choice]}</button>'
                for choice in self.choices
            )
            return f'<div class="ta-confirm">Run tool <b>{_esc(self.body)}</b>? {buttons}</div>'
        if self.kind == "banner":
            return banner_html(self.body)
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
            attached = [*self.attached, *(["image"] * len(self.images))]
            return f"> {self.body}" + "".join(f"\n> [attached: {a}]" for a in attached)
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


STOPPED_BANNER = "stopped"
_STOPPED_HTML = (
    '<div class="ta-banner ta-banner-stopped" role="status"><b>Stopped.</b> The answer so far is '
    "kept, and the conversation goes on from here.</div>"
)


def banner_html(body: str) -> str:
    """A stopped run's banner, or a problem's: what went wrong in bold, then what to do."""
    if body == STOPPED_BANNER:
        return _STOPPED_HTML
    label, _, rest = body.partition(": ")
    if label == "Error" and rest:
        return f'<div class="ta-banner ta-banner-error" role="alert"><b>Error:</b> {_esc(rest)}</div>'
    return f'<div class="ta-banner ta-banner-error" role="alert">{_esc(body)}</div>'


def error_banner(message: str) -> str:
    text = f"Error: {message}"
    if "context window exceeded" in message.lower():
        text += " — the conversation no longer fits the model's context window; run `%agent reset` or start a fresh one with `%%agent --new`."
    return text
