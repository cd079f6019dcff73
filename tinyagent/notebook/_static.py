"""The static rendering a finished run leaves in the cell output
(docs/notebook.md#static-output).

One ``display_data`` bundle: ``text/html`` (sanitized content in our own wrapper with an embedded
stylesheet, so it shows without a kernel, on GitHub and in nbconvert), ``text/markdown``
(raw HTML in the model text neutralised) and a stable ``text/plain`` (no addresses, ids or
timings, so nbval's strict comparison holds for a deterministic model).
"""

from __future__ import annotations

from typing import Any

from ._document import RunDocument
from ._widget import STYLE

STATIC_STYLE = f"<style>{STYLE}</style>"


class StaticOutput:
    """A display-able snapshot; ``display(StaticOutput(...))`` emits the three mime types."""

    def __init__(self, html: str, markdown: str, text: str) -> None:
        self.html = html
        self.markdown = markdown
        self.text = text

    @classmethod
    def from_document(cls, doc: RunDocument, kind: str = "run") -> StaticOutput:
        body = doc.static_html()
        html = f'{STATIC_STYLE}<div class="tinyagent tinyagent-{kind}"><div class="ta-body">{body}</div></div>'
        return cls(html, doc.static_markdown(), doc.static_text())

    def bundle(self) -> dict[str, str]:
        return {"text/html": self.html, "text/markdown": self.markdown, "text/plain": self.text}

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.bundle()

    def __repr__(self) -> str:
        return self.text
