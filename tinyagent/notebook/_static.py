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
"""

from __future__ import annotations

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


class StaticOutput:
    """A display-able snapshot; ``display(StaticOutput(...))`` emits the three mime types."""

    def __init__(self, html: str, markdown: str, text: str) -> None:
        self.html = html
        self.markdown = markdown
        self.text = text

    @classmethod
    def from_document(cls, doc: RunDocument, kind: str = "run") -> StaticOutput:
        body = with_copy_handlers(doc.static_html())
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
