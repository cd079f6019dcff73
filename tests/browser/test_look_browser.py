"""How the chat panel and the cell view look, in JupyterLab and Notebook 7, light and dark themes
(headless Chromium; docs/notebook.md#tests).

* Contrast: every text of a ``.tinyagent`` root (panel and cell view, live and static, the
  composer's placeholder) against its background composited up the tree, at least WCAG AA
  (4.5:1; disabled controls exempt), sampled while a slow scripted run streams (retry status,
  thinking, a tool card, an answer with a table, a list, code, a quote) and after it, with a
  stopped and an error banner. The minimum per theme is printed (``-s`` shows it). The same test
  saves light and dark screenshots of the panel and of a cell under ``test-artifacts/look/``.
* One look, live and saved: one finished run shown as a live view and as the static rendering
  (a ``text/html`` output inside JupyterLab's ``.jp-RenderedHTMLCommon``) have the same computed
  boxes, margins, alignment and colours, element by element, and the same height.
* Untrusted: a notebook saved with its outputs and opened without its signature loses the
  ``<style>``, but its tool cards stay boxed and its user turns, banners and footers marked.
* The batch progress widget (its own stylesheet): the same contrast check while it runs and
  when it has finished.
* No console errors on any of these pages.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_pages import (
    ALL_PROMPTS_NUMBERED,
    STATIC_OUTPUT,
    USE_SERVER,
    WIDGET_OUTPUT,
    JupyterServer,
    collect_console_errors,
    new_notebook,
    open_in_lab,
    open_in_notebook7,
    ours,
    start_run_all,
    wait_for_run_all,
    write_notebook,
)

ROOT = Path(__file__).resolve().parents[2]
LOOK = ROOT / "test-artifacts" / "look"
AA = 4.5

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
SETUP = f"""\
def _servers():
    from tinyagent.testing import Fault, ModelServer, Reply, ScriptedBrain, ToolCallSpec

    def thinking_turn():
        return Reply(reasoning={THINK!r}, tool_calls=[ToolCallSpec("list_variables", {{}})],
                     chunk_chars=5, delay=0.03)

    answer = Reply(text={ANSWER!r}, chunk_chars=5, delay=0.015)
    cell = ModelServer(ScriptedBrain([
        Reply(fault=Fault.http(429, retry_after=0.8)),
        thinking_turn(),
        answer,
        Reply(text="Words that will be stopped. " * 200, chunk_chars=5, delay=0.03),
        Reply(tool_calls=[ToolCallSpec("list_variables", {{}})]),
        Reply(text="Confirmed and done."),
        Reply(fault=Fault.http(400, "the model refused this request")),
    ])).start()
    return cell, ModelServer(ScriptedBrain([thinking_turn(), answer])).start()

cell_server, panel_server = _servers()
sales, ratio = list(range(120)), 1.0
%load_ext tinyagent.notebook"""
CELL = (
    "%%agent --name look -k --provider demo -m scripted --base-url {cell_server.url}\n"
    "What is in my kernel?"
)
PANEL = (
    "from tinyagent.notebook import ChatPanel\n"
    'panel = ChatPanel(kernel="auto", provider="demo", model="scripted",\n'
    '                  base_url=panel_server.url, models=["scripted", "scripted-large"])\n'
    "panel"
)
PANEL_RUN = (
    'panel.send("What is in my kernel? Show me how to total the sales.")\nawait panel.wait()'
)
STOPPED = "%%agent --name look\nKeep talking"
CONFIRM = "%%agent --name look -k --confirm\nList them again"
FAILING = "%%agent --name look\nOne more"
LOOK_CELLS = [SETUP, CELL, PANEL, PANEL_RUN, STOPPED, CONFIRM, FAILING]
# what the test does in a cell's live view while Run All goes on: (cell, text it waits for,
# button it then clicks); the contrast is sampled before the click
CLICKS = [(4, "will be stopped", "button.ta-stop"), (5, "Run tool", 'button[data-choice="run"]')]

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


def sample_while_running(
    page: Any, server: JupyterServer, notebook: str, shot: Path
) -> ContrastLog:
    """Contrast samples while Run All goes on (streaming ones while a view runs); does
    :data:`CLICKS` as their texts show; saves a screenshot of the panel to ``shot`` while its
    thinking streams."""
    log = ContrastLog()
    clicks = list(CLICKS)
    shot_taken = False
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        sample = page.evaluate(CONTRAST)
        if sample["running"]:
            log.add(sample)
        if not shot_taken:
            panel = page.locator(".tinyagent-panel.ta-running")
            if panel.count() and panel.locator("summary.ta-thinking-live").count():
                panel.screenshot(path=str(shot))
                shot_taken = True
        for click in clicks[:1]:
            index, text, button = click
            live = (
                page.locator(".jp-CodeCell").nth(index).locator(f"{WIDGET_OUTPUT} .tinyagent-run")
            )
            if live.count() and text in live.inner_text():
                log.add(page.evaluate(CONTRAST))  # with what the click takes away
                live.locator(button).click()
                clicks.remove(click)
        if page.evaluate(ALL_PROMPTS_NUMBERED):
            break
        page.wait_for_timeout(250)
    assert clicks == [], "every button to click showed"
    assert shot_taken, "the panel was seen thinking"
    wait_for_run_all(page, server, notebook)
    return log


@pytest.mark.parametrize(
    ("front_end", "theme"),
    [("lab", "light"), ("lab", "dark"), ("nb7", "light"), ("nb7", "dark")],
)
def test_contrast_while_streaming_and_after_with_screenshots(
    page: Any, jupyter_server: JupyterServer, front_end: str, theme: str
) -> None:
    errors = collect_console_errors(page)
    notebook = write_notebook(jupyter_server, f"look_{front_end}_{theme}.ipynb", LOOK_CELLS)
    (open_in_lab if front_end == "lab" else open_in_notebook7)(page, jupyter_server, notebook)
    try:
        set_theme(page, dark=theme == "dark")
        LOOK.mkdir(parents=True, exist_ok=True)
        name = "lab" if front_end == "lab" else "nb7"
        start_run_all(page)
        streaming = sample_while_running(
            page, jupyter_server, notebook, LOOK / f"panel-{name}-{theme}-streaming.png"
        )
        cells = page.locator(".jp-CodeCell")
        panel = page.locator(".tinyagent-panel")
        panel.get_by_text("That is all.").wait_for(timeout=30_000)
        for index, text in (
            (1, "That is all."),
            (4, "Stopped."),
            (5, "Confirmed and done."),
            (6, "refused"),
        ):
            cells.nth(index).locator(f"{STATIC_OUTPUT} .tinyagent-run").get_by_text(
                text, exact=False
            ).first.wait_for(timeout=30_000)
        after = ContrastLog()
        after.add(page.evaluate(CONTRAST))

        # the whole transcript in one picture: its scroll box's height limit lifted
        panel.locator(".ta-transcript").evaluate("t => { t.style.maxHeight = 'none'; }")
        panel.screenshot(path=str(LOOK / f"panel-{name}-{theme}.png"))
        cells.nth(1).locator(".jp-Cell-outputArea").screenshot(
            path=str(LOOK / f"cell-{name}-{theme}.png")
        )
        print(f"\n[contrast {name} {theme}] streaming: {streaming.summary()}")
        print(f"[contrast {name} {theme}] after: {after.summary()}")

        # what was measured: the live run bar and the panel's controls while streaming, every
        # part of a finished run after
        assert streaming.samples >= 3, "sampled several times while the views streamed"
        for kind in (
            "cell/live .ta-bar span.ta-live-status",
            "cell/live .ta-confirm button",
            "cell/live .ta-confirm b",
            "panel/live .ta-thinking summary.ta-thinking-live",
            "cell/live div.ta-status",
        ):
            assert any(k.startswith(kind) for k in streaming.kinds), (kind, sorted(streaming.kinds))
        for kind in (
            "cell/static .ta-card span.ta-badge",
            "cell/static .ta-card summary",
            "cell/static .ta-card pre",
            "cell/static div.ta-footer",
            "cell/static .ta-footer span.ta-time",
            "cell/static div.ta-banner.ta-banner-stopped",
            "cell/static .ta-banner b",
            "cell/static .ta-thinking summary",
            "cell/static .ta-text td",
            "cell/static .ta-text span.k",
            "cell/static .ta-text span.c1",
            "cell/static .ta-text a",
            "panel/live .ta-user p",
            "panel/live .ta-text code",
            "panel/live .ta-bar textarea.ta-input::placeholder",
            "panel/live .ta-bar select.ta-model",
            "panel/live .ta-bar span.ta-usage",
            "panel/live .ta-bar button.ta-clear",
        ):
            assert any(k.startswith(kind) for k in after.kinds), (kind, sorted(after.kinds))
        assert not streaming.failures, f"under {AA}:1 while streaming: {streaming.failures}"
        assert not after.failures, f"under {AA}:1 after the run: {after.failures}"
        assert ours(errors) == []
    finally:
        set_theme(page, dark=False)  # the theme is a saved user setting: put it back
        close_session(jupyter_server, notebook)


# -- one look, live and saved ----------------------------------------------------------------------

PARITY_SETUP = f"""\
def _server():
    from tinyagent.testing import ModelServer, Reply, ScriptedBrain, ToolCallSpec
    return ModelServer(ScriptedBrain([
        Reply(reasoning={THINK!r}, tool_calls=[ToolCallSpec("list_variables", {{}})]),
        Reply(text={ANSWER!r}),
    ])).start()

panel_server = _server()
%load_ext tinyagent.notebook"""
# one finished run, with a stopped and an error banner added to its document: the panel shows it
# live; a run-kind live view gets the same parts; the static rendering of the same document,
# once as a cell's and once as a panel's
PARITY_DOC = """\
from tinyagent.notebook._static import StaticOutput
from tinyagent.notebook._widget import AgentView
doc = panel.run.renderer.doc
doc.note("banner", "stopped")
doc.note("banner", "Error: the model refused this request")
panel.view.send_ops(doc.take_ops())
live_copy = AgentView(kind="run")
live_copy.send_ops(panel.view.document())
live_copy"""
PARITY_CELLS = [
    PARITY_SETUP,
    PANEL,
    PANEL_RUN,
    PARITY_DOC,
    "StaticOutput.from_document(doc)",
    'StaticOutput.from_document(doc, kind="panel")',
]
PARITY_SELECTORS = [
    ".ta-user", ".ta-user p", "details.ta-thinking", "details.ta-thinking > summary",
    ".ta-card", ".ta-card-head", ".ta-tool-name", ".ta-badge", ".ta-card .ta-time",
    ".ta-card details > summary", ".ta-card pre", ".ta-text", ".ta-text p", ".ta-text h2",
    ".ta-text ol", ".ta-text ul", ".ta-text li", ".ta-text a", ".ta-text code", ".ta-text table",
    ".ta-text thead", ".ta-text tr", ".ta-text th", ".ta-text td", ".ta-text .ta-code",
    ".ta-text pre", ".ta-text pre span", ".ta-text blockquote", ".ta-footer", ".ta-footer .ta-time",
    ".ta-banner", ".ta-banner b",
]  # fmt: skip
PARITY_PROPERTIES = [
    "display", "color", "background-color", "opacity", "font-family", "font-size", "font-weight",
    "font-style", "line-height", "text-align", "vertical-align", "white-space", "list-style-type",
    "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border-top-width", "border-top-style", "border-top-color",
    "border-right-width", "border-right-style", "border-right-color",
    "border-bottom-width", "border-bottom-style", "border-bottom-color",
    "border-left-width", "border-left-style", "border-left-color",
    "border-top-left-radius", "border-bottom-right-radius", "width",
]  # fmt: skip
# the computed styles of each selector's elements inside one view's body, and the body's size
STYLES = """([root, selectors, properties]) => {
    const body = root.querySelector('.ta-body');
    const out = {};
    for (const selector of selectors) {
        out[selector] = [...body.querySelectorAll(selector)].map((el) => {
            const style = getComputedStyle(el);
            return Object.fromEntries(properties.map((p) => [p, style.getPropertyValue(p)]));
        });
    }
    const box = body.getBoundingClientRect();
    return {styles: out, width: box.width, height: box.height,
            rootWidth: root.getBoundingClientRect().width};
}"""


def view_styles(root: Any) -> dict[str, Any]:
    handle = root.element_handle()
    return dict(root.page.evaluate(STYLES, [handle, PARITY_SELECTORS, PARITY_PROPERTIES]))


def style_differences(
    live: dict[str, Any], static: dict[str, Any], ignore: dict[str, set[str]] | None = None
) -> list[str]:
    """What differs, element by element; ``ignore``: properties not compared, by selector ("*":
    all)."""
    ignore = ignore or {}
    differences = []
    for selector in PARITY_SELECTORS:
        ours, theirs = live["styles"][selector], static["styles"][selector]
        if len(ours) != len(theirs):
            differences.append(f"{selector}: {len(ours)} live, {len(theirs)} static")
            continue
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            for prop in PARITY_PROPERTIES:
                if prop in ignore.get("*", set()) | ignore.get(selector, set()):
                    continue
                if a[prop] != b[prop]:
                    differences.append(
                        f"{selector}[{index}] {prop}: {a[prop]} live, {b[prop]} static"
                    )
    return differences


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_live_and_static_views_of_one_run_look_the_same(
    page: Any, jupyter_server: JupyterServer, theme: str
) -> None:
    errors = collect_console_errors(page)
    notebook = write_notebook(jupyter_server, f"look_parity_{theme}.ipynb", PARITY_CELLS)
    open_in_lab(page, jupyter_server, notebook)
    try:
        set_theme(page, dark=theme == "dark")
        start_run_all(page)
        wait_for_run_all(page, jupyter_server, notebook)
        cells = page.locator(".jp-CodeCell")
        live_panel = cells.nth(1).locator(f"{WIDGET_OUTPUT} .tinyagent-panel")
        live_cell = cells.nth(3).locator(f"{WIDGET_OUTPUT} .tinyagent-run")
        static_cell = cells.nth(4).locator(f"{STATIC_OUTPUT} .tinyagent-run")
        static_panel = cells.nth(5).locator(f"{STATIC_OUTPUT} .tinyagent-panel")
        for view in (live_panel, live_cell, static_cell, static_panel):
            view.get_by_text("refused this request").wait_for(timeout=30_000)
        # every listed selector matched in the run (the comparison is not vacuous)
        cell_live, cell_static = view_styles(live_cell), view_styles(static_cell)
        empty = [s for s in PARITY_SELECTORS if not cell_static["styles"][s]]
        assert empty == [], f"nothing matched {empty}"

        differences = style_differences(cell_live, cell_static)
        assert differences == [], "a cell's live view and its static rendering differ:\n" + (
            "\n".join(differences)
        )
        assert abs(cell_live["rootWidth"] - cell_static["rootWidth"]) <= 1
        assert abs(cell_live["height"] - cell_static["height"]) <= 1, (
            cell_live["height"],
            cell_static["height"],
        )
        # the panel's transcript is a padded box: its contents are narrower than a static
        # rendering's, so widths and the auto margins that right-align differ, nothing else
        differences = style_differences(
            view_styles(live_panel),
            view_styles(static_panel),
            {"*": {"width"}, ".ta-user": {"margin-left"}, ".ta-card .ta-time": {"margin-left"}},
        )
        assert differences == [], "the panel and a panel's static rendering differ:\n" + (
            "\n".join(differences)
        )
        assert ours(errors) == []
    finally:
        set_theme(page, dark=False)
        close_session(jupyter_server, notebook)


# -- untrusted: the saved notebook without its stylesheet ------------------------------------------

UNTRUSTED_SETUP = f"""\
def _server():
    from tinyagent.testing import Fault, ModelServer, Reply, ScriptedBrain, ToolCallSpec
    return ModelServer(ScriptedBrain([
        Reply(reasoning={THINK!r}, tool_calls=[ToolCallSpec("list_variables", {{}})]),
        Reply(text={ANSWER!r}),
        Reply(fault=Fault.http(400, "the model refused this request")),
    ])).start()

server = _server()
%load_ext tinyagent.notebook
{USE_SERVER}"""
UNTRUSTED_CELLS = [
    UNTRUSTED_SETUP,
    "%%agent -k\nWhat is in my kernel?",
    "%%agent\nOne more",
    "%agent history",
]

# the inline structure an untrusted notebook keeps: per element kind, the computed style of the
# first one, and whether any of our stylesheet reached the page
UNTRUSTED_LOOK = """() => {
    const first = (selector) => document.querySelector('.jp-OutputArea-output ' + selector);
    const style = (selector) => {
        const el = first(selector);
        if (!el) return null;
        const s = getComputedStyle(el);
        const keys = ['border-top-width', 'border-top-style', 'border-top-color',
                      'border-left-width', 'border-left-style', 'border-left-color',
                      'border-top-left-radius', 'padding-left', 'background-color', 'opacity',
                      'font-size'];
        return Object.fromEntries(keys.map((k) => [k, s.getPropertyValue(k)]));
    };
    const kinds = ['.ta-card', '.ta-badge', 'details.ta-thinking', '.ta-user', '.ta-banner',
                   '.ta-footer', '.ta-text p'];
    return {
        styles: Object.fromEntries(kinds.map((k) => [k, style(k)])),
        styleElements: document.querySelectorAll('.jp-OutputArea-output style').length,
        taVariables: getComputedStyle(first('.tinyagent')).getPropertyValue('--ta-fg'),
        roots: document.querySelectorAll('.jp-OutputArea-output .tinyagent').length,
    };
}"""


def px(value: str) -> float:
    return float(value.removesuffix("px"))


def visible_colour(value: str) -> bool:
    """A computed colour that is not fully transparent."""
    if value.startswith("rgba("):
        return float(value[5:-1].split(",")[3]) > 0
    return value.startswith("rgb(")


@pytest.fixture(scope="module")
def untrusted_notebook(jupyter_server: JupyterServer) -> str:
    """A notebook executed headless (final rendering, as nbclient or nbval run it) and saved with
    its outputs, unsigned: the server's notary has never seen it."""
    from nbclient import NotebookClient

    nb = new_notebook(UNTRUSTED_CELLS)
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    html = [
        output["data"]["text/html"]
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if 'class="tinyagent ' in output.get("data", {}).get("text/html", "")
    ]
    assert len(html) == 3 and all("<style>" in page for page in html), "renderings with a <style>"
    name = "look_untrusted.ipynb"
    (jupyter_server.root / name).write_text(nbformat.writes(nb), encoding="utf-8")
    return name


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_untrusted_notebook_keeps_its_structure(
    page: Any, jupyter_server: JupyterServer, untrusted_notebook: str, theme: str
) -> None:
    errors = collect_console_errors(page)
    open_in_lab(page, jupyter_server, untrusted_notebook)
    try:
        set_theme(page, dark=theme == "dark")
        page.locator(".jp-OutputArea-output .ta-banner").first.wait_for(timeout=30_000)
        look = page.evaluate(UNTRUSTED_LOOK)
        assert look["roots"] >= 3
        assert look["styleElements"] == 0, "the sanitizer dropped the <style>"
        assert look["taVariables"] == "", "none of our stylesheet reached the page"
        styles = look["styles"]
        missing = [kind for kind, style in styles.items() if style is None]
        assert missing == [], f"no {missing} in the saved outputs"

        card = styles[".ta-card"]
        assert px(card["border-top-width"]) >= 1 and card["border-top-style"] == "solid"
        assert visible_colour(card["border-top-color"]), "tool cards are boxed"
        assert px(card["padding-left"]) > 0
        badge = styles[".ta-badge"]
        assert px(badge["border-top-width"]) >= 1 and px(badge["border-top-left-radius"]) > 0
        for kind, width in (("details.ta-thinking", 3), (".ta-user", 3), (".ta-banner", 4)):
            bar = styles[kind]
            assert px(bar["border-left-width"]) >= width and bar["border-left-style"] == "solid"
            assert visible_colour(bar["border-left-color"]), f"{kind} has a visible bar"
        assert visible_colour(styles[".ta-banner"]["background-color"]), "banners stand out"
        footer, text = styles[".ta-footer"], styles[".ta-text p"]
        assert float(footer["opacity"]) < 1 and px(footer["font-size"]) < px(text["font-size"])

        readable = ContrastLog()
        readable.add(page.evaluate(CONTRAST))
        print(f"\n[contrast untrusted lab {theme}] {readable.summary()}")
        assert not readable.failures, f"under {AA}:1 untrusted: {readable.failures}"
        cells = page.locator(".jp-CodeCell")
        for index, what in ((1, "run"), (2, "error"), (3, "history")):
            cells.nth(index).locator(".jp-Cell-outputArea").screenshot(
                path=str(LOOK / f"untrusted-{what}-lab-{theme}.png")
            )
        assert ours(errors) == []
    finally:
        set_theme(page, dark=False)
        close_session(jupyter_server, untrusted_notebook)


# -- the batch progress widget (its own stylesheet) -------------------------------------------------

BATCH = """\
import asyncio
from tinyagent.batch._progress import ProgressCounts
from tinyagent.notebook._batch_progress import NotebookProgress
progress = NotebookProgress()
progress.on_stop(lambda: None)
counts = ProgressCounts(total=40)
progress.start(counts)
for row in range(1, 13):
    counts.done, counts.cached, counts.running, counts.tokens = row, row // 4, 2, 120 * row
    counts.failed, counts.cost, counts.elapsed = row // 5, 0.0004 * row, counts.elapsed + 0.25
    progress.update(counts)
    await asyncio.sleep(0.25)
counts.running, counts.not_run = 0, 40 - counts.done - counts.failed
progress.finish(counts, "stopped")"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_batch_progress_contrast(page: Any, jupyter_server: JupyterServer, theme: str) -> None:
    errors = collect_console_errors(page)
    notebook = write_notebook(
        jupyter_server, f"look_batch_{theme}.ipynb", ["%load_ext tinyagent.notebook", BATCH]
    )
    open_in_lab(page, jupyter_server, notebook)
    try:
        set_theme(page, dark=theme == "dark")
        start_run_all(page)
        page.locator(".ta-batch").wait_for(timeout=30_000)
        running = ContrastLog()
        while not page.evaluate(ALL_PROMPTS_NUMBERED):
            sample = page.evaluate(CONTRAST, ".ta-batch")
            if sample["running"]:
                running.add(sample)
            page.wait_for_timeout(300)
        wait_for_run_all(page, jupyter_server, notebook)
        page.locator(".ta-batch.ta-batch-finished").wait_for(timeout=10_000)
        after = ContrastLog()
        after.add(page.evaluate(CONTRAST, ".ta-batch"))
        print(f"\n[contrast batch lab {theme}] running: {running.summary()}")
        print(f"[contrast batch lab {theme}] after: {after.summary()}")
        assert running.samples >= 3
        for kind in ("chip-done", "chip-failed", "chip-tokens", "batch-stop"):
            assert any(kind in k for k in running.kinds), (kind, sorted(running.kinds))
        assert any("batch-final" in k for k in after.kinds), sorted(after.kinds)
        assert not running.failures, running.failures
        assert not after.failures, after.failures
        assert ours(errors) == []
    finally:
        set_theme(page, dark=False)
        close_session(jupyter_server, notebook)
