"""The static rendering a finished run leaves in the cell output
(docs/notebook.md#static-output).

One ``display_data`` bundle: ``text/html`` (sanitized content in our own wrapper with an embedded
stylesheet, so it shows without a kernel, on GitHub and in nbconvert), ``text/markdown``
(raw HTML in the model text neutralised) and a stable ``text/plain`` (no addresses, ids or
timings, so nbval's strict comparison holds for a deterministic model).

The saved notebook has no widget JS, so each code box's Copy button (``.ta-copy``, added by us
after sanitizing) gets a short inline ``onclick`` here: it works in a trusted notebook and in an
nbconvert export. The button is also ``hidden="hidden"`` (JupyterLab's sanitizer keeps that form
of the attribute), and our stylesheet shows only buttons that have the handler: an untrusted
notebook's sanitizer strips the handler and the ``<style>``, so the inert button stays hidden and
the code reads as before.

An untrusted notebook also loses the stylesheet itself (JupyterLab's sanitizer drops ``<style>``
but keeps ``class`` and a filtered set of inline ``style`` properties: colours as hex, ``rgb()``
or ``rgba()``, lengths, borders, padding, margins, opacity...; no ``var()``). So the few elements
that give a run its structure also carry an inline style from :data:`INLINE_STYLE`, one
class → declarations map: tool cards are boxed, badges are pills, thinking, user
turns and banners have a bar, footers are smaller and lighter. Only theme-neutral values, which
read on a light and on a dark page: semi-transparent greys, never a theme colour. The stylesheet
uses the same lengths and marks its colour-carrying properties for these classes ``!important``,
so in a trusted notebook its theme colours win over the inline greys (``_widget.css``).
"""

from __future__ import annotations

import re
from typing import Any

from ._document import RunDocument
from ._widget import STYLE

STATIC_STYLE = f"<style>{STYLE}</style>"

# What _widget.js does on a click, in one attribute: copy the innerText of the box's <pre> (the
# Clipboard API, else a hidden textarea and execCommand), say so on the button for 1.5 s.
# Single quotes only, and no ``<``, ``>`` or ``&``: it goes into a double-quoted attribute as is.
COPY_ONCLICK = (
    "var b=this,t=b.closest('.ta-code').querySelector('pre').innerText,"
    "s=function(m){b.textContent=m;b.classList.add('ta-copied');clearTimeout(b.taTimer);"
    "b.taTimer=setTimeout(function(){b.textContent='Copy';b.classList.remove('ta-copied')},1500)},"
    "f=function(){var a=document.createElement('textarea'),k=false;a.value=t;"
    "a.style.cssText='position:fixed;top:0;left:0;opacity:0';document.body.appendChild(a);"
    "a.select();try{k=document.execCommand('copy')}catch(e){}a.remove();b.focus();"
    "s(k?'Copied':'Copy failed')};"
    "navigator.clipboard?navigator.clipboard.writeText(t).then(function(){s('Copied')},f):f()"
)
# the start of every Copy button we emit (markdown code blocks and tool cards); model text cannot
# produce it: nh3 removes <button> and escapes quotes inside attribute values
_COPY_BUTTON_START = '<button class="ta-copy" type="button"'


def with_copy_handlers(html: str) -> str:
    """``html`` with the inline click handler on each of our Copy buttons (hidden without it)."""
    return html.replace(
        _COPY_BUTTON_START, f'{_COPY_BUTTON_START} hidden="hidden" onclick="{COPY_ONCLICK}"'
    )


#: the inline style an element with one of these classes gets in the static rendering (declarations
#: of several matching classes are joined in this order). Values must pass JupyterLab's sanitizer.
INLINE_STYLE: dict[str, str] = {
    "ta-card": (
        "margin: 0.5em 0; padding: 0.4em 0.7em; border: 1px solid rgba(128, 128, 128, 0.5); "
        "border-radius: 6px"
    ),
    "ta-card-head": "font-weight: 600",
    "ta-badge": (
        "padding: 0 0.6em; border: 1px solid rgba(128, 128, 128, 0.5); border-radius: 1em; "
        "font-size: 0.8em"
    ),
    "ta-thinking": "padding-left: 0.75em; border-left: 3px solid rgba(128, 128, 128, 0.5)",
    "ta-user": "padding: 0.15em 0 0.15em 0.75em; border-left: 3px solid rgba(128, 128, 128, 0.8)",
    "ta-banner": (
        "padding: 0.45em 0.75em; border-left: 4px solid rgba(128, 128, 128, 0.8); "
        "background-color: rgba(128, 128, 128, 0.12)"
    ),
    "ta-footer": "font-size: 0.85em; opacity: 0.8",
}

# a start tag with a class attribute: in nh3's serialization a literal ``<`` in text is escaped and
# a ``"`` inside an attribute value is ``&quot;``, so each match is a real tag's real attribute
_CLASSED_TAG = re.compile(r'<([a-z][a-z0-9]*)(\s[^<>]*?)?\sclass="([^"]*)"([^<>]*)>')


def _styled(match: re.Match[str]) -> str:
    tag, before, classes, after = match.group(1, 2, 3, 4)
    before = before or ""
    style = "; ".join(INLINE_STYLE[c] for c in classes.split() if c in INLINE_STYLE)
    if not style or " style=" in before or " style=" in after:
        return match.group(0)
    return f'<{tag}{before} class="{classes}" style="{style}"{after}>'


def with_inline_styles(html: str) -> str:
    """``html`` with :data:`INLINE_STYLE`'s declarations on the elements of those classes."""
    return _CLASSED_TAG.sub(_styled, html)


class StaticOutput:
    """A display-able snapshot; ``display(StaticOutput(...))`` emits the three mime types."""

    def __init__(self, html: str, markdown: str, text: str) -> None:
        self.html = html
        self.markdown = markdown
        self.text = text

    @classmethod
    def from_document(cls, doc: RunDocument, kind: str = "run") -> StaticOutput:
        body = with_copy_handlers(with_inline_styles(doc.static_html()))
        html = (
            f'{STATIC_STYLE}<div class="tinyagent tinyagent-{kind}">'
            f'<div class="ta-body">{body}</div></div>'
        )
        return cls(html, doc.static_markdown(), doc.static_text())

    def bundle(self) -> dict[str, str]:
        return {"text/html": self.html, "text/markdown": self.markdown, "text/plain": self.text}

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.bundle()

    def __repr__(self) -> str:
        return self.text
