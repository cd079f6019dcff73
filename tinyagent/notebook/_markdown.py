"""Model text → safe HTML, and splitting a growing text into finished blocks and an open tail.

Model output is untrusted. It is rendered with markdown-it-py (CommonMark + tables +
strikethrough, raw HTML allowed so that ``<br>``/``<details>`` work) and the result is always
passed through nh3 (the Rust ``ammonia`` sanitizer): ``<script>``/``<style>``/``<iframe>`` and every
``on*`` attribute are dropped, and only http(s)/mailto URLs survive, so ``javascript:`` links die.
Code blocks are highlighted in the kernel with Pygments (CSS classes, no inline JS).
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

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


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
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
    """Markdown → sanitized HTML."""
    return sanitize(_parser().render(text))


def plain_html(text: str) -> str:
    """Text shown verbatim (tool arguments and results)."""
    return f"<pre>{html.escape(text)}</pre>"


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_TABLE_DELIM = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")


class BlockSplitter:
    """Splits a growing Markdown text into *finished* pieces and one open *tail*.

    A piece is finished at a blank line (outside a code fence) that is followed by a line starting
    at column 0, or after a closing fence. A block that grows past ``max_tail`` characters is cut at
    its last complete line: an open code fence is closed in the piece and re-opened in the tail,
    and a table's header rows are carried into the tail (``continuation`` marks such pieces so the
    view can hide the repeated header). Each character is scanned a bounded number of times, so
    a long reply costs O(n).
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
                self.prefix = fence[1] + "\n"
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
