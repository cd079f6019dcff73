"""Model text → safe HTML, and splitting a growing text into finished blocks and an open tail.

Model output is untrusted. It is rendered with markdown-it-py (CommonMark + tables +
strikethrough, raw HTML allowed so that ``<br>``/``<details>`` work) and the result is always
passed through nh3 (the Rust ``ammonia`` sanitizer): ``<script>``/``<style>``/``<iframe>`` and every
``on*`` attribute are dropped, and only http(s)/mailto URLs survive, so ``javascript:`` links die.
Code blocks are highlighted in the kernel with Pygments (CSS classes, no inline JS).

Every code block of the Markdown gets a Copy button, added by us *after* sanitizing (nh3 drops
``<button>``, so model text can never make one): ``<div class="ta-code">`` + :data:`COPY_BUTTON`
+ the block's ``<pre>``. The code blocks are found by a per-call random class put on their
``<pre>`` while rendering, which model text cannot guess. The live view's JS handles the button's
click; the static rendering adds an inline handler (``_static.py``).
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt

_ALLOWED_TAGS = set(nh3.ALLOWED_TAGS) | {
    "details",
    "summary",
    "span",
    "div",
    "pre",
    "code",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
    "s",
    "input",
    "sup",
    "sub",
    "kbd",
    "hr",
    "br",
    "img",
} - {"script", "style", "iframe", "object", "embed", "form", "button", "textarea", "select"}
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"class", "title", "lang", "dir"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "style"},
    "th": {"align", "style"},
    "ol": {"start"},
    "input": {"type", "checked", "disabled"},
    "code": {"class"},
}
_URL_SCHEMES = {"http", "https", "mailto"}
# text-align from markdown tables is the only inline style kept
_STYLE_PROPERTIES = {"text-align"}


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound
    except ImportError:  # pragma: no cover - pygments ships with IPython
        return ""
    if not lang:
        return ""
    try:
        lexer = get_lexer_by_name(lang.split()[0])
    except ClassNotFound:
        return ""
    return str(highlight(code, lexer, HtmlFormatter(nowrap=True)))


#: The Copy button of a code block (``div.ta-code > button.ta-copy + pre``: tool cards use it too).
COPY_BUTTON = '<button class="ta-copy" type="button" title="Copy code">Copy</button>'
# Ends the info string of a code fence that BlockSplitter re-opened in the next piece: the view
# renders that piece's <pre> with ``data-ta-continued`` and copies the chunks of a long streamed
# block as one. Invisible; model text that carries it only joins its own code blocks on copy.
_CONTINUED = "\u2063"
_NONCE_KEY = "ta_code_nonce"


def _code_rule(default: Callable[..., str]) -> Callable[..., str]:
    """Wrap markdown-it's fence/code_block renderer: mark our ``<pre>`` with the call's nonce."""

    def rule(
        _renderer: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]
    ) -> str:
        token = tokens[idx]
        continued = token.type == "fence" and token.info.endswith(_CONTINUED)
        if continued:
            token.info = token.info[: -len(_CONTINUED)].rstrip()
        out = default(tokens, idx, options, env)
        nonce = env.get(_NONCE_KEY) if isinstance(env, dict) else None
        if nonce and out.startswith("<pre>"):
            mark = f"{nonce}-c" if continued else nonce
            out = f'<pre class="{mark}">' + out[len("<pre>") :]
        return out

    return rule


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
    rules = md.renderer.rules  # type: ignore[attr-defined]  # RendererHTML's; the protocol omits it
    for name in ("fence", "code_block"):
        md.add_render_rule(name, _code_rule(rules[name]))
    return md


def sanitize(fragment: str) -> str:
    """Sanitize an HTML fragment built from untrusted text."""
    return str(
        nh3.clean(
            fragment,
            tags=_ALLOWED_TAGS,
            attributes=_ALLOWED_ATTRIBUTES,
            url_schemes=_URL_SCHEMES,
            filter_style_properties=_STYLE_PROPERTIES,
            link_rel="noopener noreferrer nofollow",
            strip_comments=True,
        )
    )


def markdown_html(text: str) -> str:
    """Markdown → sanitized HTML, each code block in a ``.ta-code`` box with a Copy button."""
    nonce = "ta-code-" + secrets.token_hex(8)
    clean = sanitize(_parser().render(text, {_NONCE_KEY: nonce}))
    if nonce not in clean:
        return clean
    # our <pre> holds escaped code only (no nested <pre>), so its first </pre> closes it
    box = re.compile(rf'<pre class="{nonce}(-c)?">(.*?)</pre>', re.DOTALL)
    return box.sub(_code_box, clean)


def _code_box(match: re.Match[str]) -> str:
    pre = "<pre data-ta-continued>" if match.group(1) else "<pre>"
    return f'<div class="ta-code">{COPY_BUTTON}{pre}{match.group(2)}</pre></div>'


def plain_html(text: str) -> str:
    """Text shown verbatim (tool arguments and results)."""
    return f"<pre>{html.escape(text)}</pre>"


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_TABLE_DELIM = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")


class BlockSplitter:
    """Splits a growing Markdown text into *finished* pieces and one open *tail*.

    A piece is finished at a blank line (outside a code fence) that is followed by a line starting
    at column 0, or after a closing fence. A block that grows past ``max_tail`` characters is cut at
    its last complete line: an open code fence is closed in the piece and re-opened in the tail
    (the opener marked with ``_CONTINUED``), and a table's header rows are carried into the tail
    (``continuation`` marks such pieces so the view can hide the repeated header). Each character
    is scanned a bounded number of times, so a long reply costs O(n).
    """

    def __init__(self, max_tail: int = 2000) -> None:
        self.max_tail = max_tail
        self.tail = ""  # uncommitted source (without the carried prefix)
        self.prefix = ""  # fence opener / table header carried into the tail
        self.continuation = False
        self._fence: str | None = None  # fence marker open at the start of ``tail``
        self._table_header = ""

    def feed(self, delta: str) -> None:
        self.tail += delta

    def tail_source(self) -> str:
        return self.prefix + self.tail

    def take_finished(self) -> list[tuple[str, bool]]:
        """Commit and return ``[(source, is_continuation)]`` of the pieces finished so far."""
        pieces: list[tuple[str, bool]] = []
        while True:
            cut = self._find_boundary()
            if cut is None:
                break
            source, self.tail = self.tail[:cut], self.tail[cut:]
            pieces.append(self._commit(source, closed=True))
        if len(self.tail) > self.max_tail:
            last_newline = self.tail.rfind("\n", 0, len(self.tail) - 1)
            if last_newline > 0:
                source, self.tail = self.tail[: last_newline + 1], self.tail[last_newline + 1 :]
                pieces.append(self._commit(source, closed=False))
            elif len(self.tail) > 2 * self.max_tail:
                # one enormous line: cut at a space so the re-sent tail stays bounded
                space = self.tail.rfind(" ", 0, len(self.tail) - self.max_tail // 2)
                if space > 0:
                    source, self.tail = self.tail[: space + 1], self.tail[space + 1 :]
                    pieces.append(self._commit(source, closed=False))
        return pieces

    def finish(self) -> list[tuple[str, bool]]:
        """The remaining tail as final pieces (the text ended)."""
        pieces = self.take_finished()
        if self.tail.strip() or (self.tail and not pieces):
            pieces.append((self.prefix + self.tail, self.continuation))
        self.tail, self.prefix, self._fence = "", "", None
        return pieces

    # -- internals ----------------------------------------------------------------------------

    def _commit(self, source: str, closed: bool) -> tuple[str, bool]:
        """Turn committed ``source`` into a renderable piece and set up the next tail."""
        text = self.prefix + source
        continuation = self.continuation
        fence, header = self._scan_state(source)
        if closed:
            self.prefix, self.continuation, self._fence, self._table_header = "", False, None, ""
        else:
            if fence is not None:
                text = text if text.endswith("\n") else text + "\n"
                text += fence[0] + "\n"
                # the opener again, marked: the view copies the chunks of the block as one
                opener = fence[1] if fence[1].endswith(_CONTINUED) else f"{fence[1]} {_CONTINUED}"
                self.prefix = opener + "\n"
            elif header:
                self.prefix = header
            else:
                self.prefix = ""
            self.continuation = bool(self.prefix) and fence is None
            self._fence = fence[0] if fence else None
            self._table_header = header
        return text, continuation

    def _scan_state(self, source: str) -> tuple[tuple[str, str] | None, str]:
        """The fence still open after ``source`` (marker, opener line) and any table header."""
        fence: tuple[str, str] | None = (
            (self._fence, self.prefix.rstrip("\n")) if self._fence else None
        )
        lines = source.split("\n")
        if source.endswith("\n"):
            lines.pop()  # the empty remainder after the last newline is not a line
        header = self._table_header
        for i, line in enumerate(lines):
            match = _FENCE.match(line)
            if fence is None and match:
                fence = (match.group(1), line)
            elif (
                fence is not None
                and match
                and match.group(1).startswith(fence[0][0])
                and len(match.group(1)) >= len(fence[0])
                and not match.group(2).strip()
            ):
                fence = None
            elif (
                fence is None
                and not header
                and i + 1 < len(lines)
                and "|" in line
                and _TABLE_DELIM.match(lines[i + 1])
            ):
                header = line + "\n" + lines[i + 1] + "\n"
            elif fence is None and not line.strip():
                header = ""
        return fence, header

    def _find_boundary(self) -> int | None:
        """Offset just after the first finished block in ``tail``, or ``None``."""
        text = self.tail
        fence = self._fence
        pos = 0
        blank_seen_at: int | None = None
        while True:
            end = text.find("\n", pos)
            if end < 0:
                # an incomplete last line: it still closes the block before it once it starts
                # at column 0 after a blank line
                if blank_seen_at is not None and fence is None and text[pos : pos + 1].strip():
                    return pos
                return None
            line = text[pos:end]
            match = _FENCE.match(line)
            if fence is not None:
                if (
                    match
                    and match.group(1)[0] == fence[0]
                    and len(match.group(1)) >= len(fence)
                    and not match.group(2).strip()
                ):
                    return end + 1  # a closed fence is a finished block
            elif match:
                if pos > 0 and blank_seen_at is not None:
                    return pos
                fence = match.group(1)
                blank_seen_at = None
            elif not line.strip():
                if pos > 0 and text[:pos].strip():
                    blank_seen_at = pos
            elif blank_seen_at is not None and not line[:1].isspace():
                return pos
            else:
                blank_seen_at = None
            pos = end + 1
