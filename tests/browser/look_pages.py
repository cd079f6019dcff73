"""What the look tests share (tests/browser/test_look_browser.py, test_look_saved_browser.py):
the in-page contrast measurement, the log of its samples, switching the Jupyter theme.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_pages import JupyterServer

ROOT = Path(__file__).resolve().parents[2]
LOOK = ROOT / "test-artifacts" / "look"
AA = 4.5

# -- the scripted run the look tests show (a panel on panel_server, set up by their SETUP)

THINK = "Let me see what the kernel holds before I answer. " * 5
ANSWER = """## What I found

The kernel holds **two** variables; `sales` is the one to look at:

| name | type | rows |
|---|---|---:|
| sales | DataFrame | 120 |
| ratio | float | 1 |

1. Group the rows by region
2. Plot the totals (see [the pandas docs](https://pandas.pydata.org/docs/))
   - one bar per region

```python
import pandas as pd
# the total per region
totals = sales.groupby("region")["amount"].sum()  # a Series
print(f"{len(totals)} regions", 3.5 * 2, True, None)
```

> The amounts are in euros.

That is all."""
# everything but the two servers and two variables is made inside a function: list_variables (the
# tool card) then lists a few short lines
PANEL = (
    "from tinyagent.notebook import ChatPanel\n"
    'panel = ChatPanel(kernel="auto", provider="demo", model="scripted",\n'
    '                  base_url=panel_server.url, models=["scripted", "scripted-large"])\n'
    "panel"
)
PANEL_RUN = (
    'panel.send("What is in my kernel? Show me how to total the sales.")\nawait panel.wait()'
)

# -- in-page measurements ------------------------------------------------------------------------

# Contrast of every text in the .tinyagent roots: an element with a non-blank text node of its
# own, rendered and visible, its colour against its background composited up the tree (each
# ancestor's background-color and opacity; the canvas is white), WCAG's ratio. Colours come as
# rgb()/rgba() or, from color-mix(), color(srgb r g b / a). Disabled controls are exempt.
CONTRAST = """(rootSelector) => {
    const parse = (s) => {
        let m = /^rgba?\\(([^)]*)\\)$/.exec(s);
        if (m) {
            const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(parseFloat);
            return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
        }
        m = /^color\\(srgb\\s+([^)]*)\\)$/.exec(s);
        if (m) {
            const p = m[1].split(/[\\s\\/]+/).filter(Boolean).map(parseFloat);
            return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
        }
        if (s === 'transparent') return [0, 0, 0, 0];
        throw new Error('unparsed colour ' + s);
    };
    // a over b (straight alpha)
    const over = (a, b) => {
        const alpha = a[3] + b[3] * (1 - a[3]);
        if (alpha === 0) return [0, 0, 0, 0];
        const mix = (i) => (a[i] * a[3] + b[i] * b[3] * (1 - a[3])) / alpha;
        return [mix(0), mix(1), mix(2), alpha];
    };
    const fade = (c, o) => [c[0], c[1], c[2], c[3] * o];
    const chain = (el) => {
        const nodes = [];
        for (let n = el; n && n.nodeType === 1; n = n.parentElement) nodes.push(n);
        return nodes;  // the element first, <html> last
    };
    // what the element shows at a pixel: `leaf` (the text colour, or transparent) inside the
    // element, each level's background under it and its opacity applied, up to the canvas
    const pixel = (el, leaf, pseudo) => {
        let c = leaf;
        for (const n of chain(el)) {
            const s = getComputedStyle(n);
            c = fade(over(c, parse(s.backgroundColor)), parseFloat(s.opacity));
        }
        return over(c, [255, 255, 255, 1]);
    };
    const lum = (c) => {
        const ch = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * ch(c[0]) + 0.7152 * ch(c[1]) + 0.0722 * ch(c[2]);
    };
    const ratio = (a, b) => {
        const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
        return (x + 0.05) / (y + 0.05);
    };
    const hex = (c) => '#' + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
    // "panel/live .ta-user p": the view, live or static, the item the text is in, the element
    const describe = (el) => {
        const cls = [...el.classList].join('.');
        const root = el.closest('.tinyagent');
        const kind = root.classList.contains('ta-batch') ? 'batch' : 'cell';
        const where = (root.classList.contains('tinyagent-panel') ? 'panel' : kind) +
            (root.closest('[data-mime-type="text/html"]') ? '/static' : '/live');
        const item = el.closest(ITEMS);
        const within = item && item !== el ? `.${item.classList[0]} ` : '';
        return `${where} ${within}${el.tagName.toLowerCase()}${cls ? '.' + cls : ''}`;
    };
    const ITEMS = '.ta-user, .ta-thinking, .ta-card, .ta-text, .ta-banner, .ta-footer, ' +
        '.ta-status, .ta-confirm, .ta-bar';
    const results = [];
    const measure = (el, color, what, text) => {
        const fg = pixel(el, parse(color));
        const bg = pixel(el, [0, 0, 0, 0]);
        results.push({what, text: text.trim().slice(0, 40), ratio: ratio(fg, bg), fg: hex(fg), bg: hex(bg)});
    };
    const roots = [...document.querySelectorAll(rootSelector || '.tinyagent:not(.ta-batch)')];
    for (const root of roots) {
        for (const el of [root, ...root.querySelectorAll('*')]) {
            if (el.closest(':disabled, [aria-disabled="true"]')) continue;
            if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
            if (!el.getClientRects().length) continue;
            if (el.tagName === 'SELECT') {
                const option = el.selectedOptions[0];
                if (option) measure(el, getComputedStyle(el).color, describe(el), option.text);
                continue;
            }
            if (el.tagName === 'OPTION' || el.tagName === 'STYLE') continue;
            const own = [...el.childNodes].filter((n) => n.nodeType === 3 && n.textContent.trim());
            if (own.length) measure(el, getComputedStyle(el).color, describe(el), own.map((n) => n.textContent).join(' '));
            if ((el.tagName === 'TEXTAREA' || el.tagName === 'INPUT') && el.placeholder && !el.value) {
                measure(el, getComputedStyle(el, '::placeholder').color, describe(el) + '::placeholder', el.placeholder);
            }
        }
    }
    const running = roots.some((r) => r.classList.contains('ta-running') ||
        (r.classList.contains('ta-batch') && !r.classList.contains('ta-batch-finished')));
    return {running, results};
}"""

THEME_IS_LIGHT = "light => document.body.dataset.jpThemeLight === String(light)"


def set_theme(page: Any, dark: bool) -> None:
    name = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.evaluate(
        "name => window.jupyterapp.commands.execute('apputils:change-theme', {theme: name})", name
    )
    page.wait_for_function(THEME_IS_LIGHT, arg=not dark, timeout=30_000)
    page.wait_for_timeout(300)  # the theme's stylesheet applied


def close_session(server: JupyterServer, notebook: str) -> None:
    session = server.session(notebook)
    if session is not None:
        server.api("DELETE", f"/api/sessions/{session['id']}")


class ContrastLog:
    """The texts measured across samples: the lowest ratio seen, and every one under AA."""

    def __init__(self) -> None:
        self.samples = 0
        self.texts = 0
        self.lowest: dict[str, Any] | None = None
        self.failures: dict[str, dict[str, Any]] = {}
        self.kinds: set[str] = set()

    def add(self, sample: dict[str, Any]) -> None:
        self.samples += 1
        for result in sample["results"]:
            self.texts += 1
            self.kinds.add(result["what"])
            if self.lowest is None or result["ratio"] < self.lowest["ratio"]:
                self.lowest = result
            if result["ratio"] < AA:
                self.failures.setdefault(f"{result['what']} {result['fg']}/{result['bg']}", result)

    def summary(self) -> str:
        low = self.lowest or {"ratio": float("nan"), "what": "-", "text": ""}
        return (
            f"min {low['ratio']:.2f}:1 ({low['what']} {low['text']!r}) over {self.samples} samples,"
            f" {self.texts} texts"
        )
