"""The saved look (headless Chromium; docs/notebook.md#tests), light and dark themes:

* One look, live and saved: one finished run shown as a live view and as the static rendering
  (a ``text/html`` output inside JupyterLab's ``.jp-RenderedHTMLCommon``) have the same computed
  boxes, margins, alignment and colours, element by element, and the same height.
* Untrusted: a notebook saved with its outputs and opened without its signature loses the
  ``<style>``, but its tool cards stay boxed and its user turns, banners and footers marked, and
  its texts readable (AA).
* No console errors on these pages.
"""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
from jupyter_pages import (
    STATIC_OUTPUT,
    USE_SERVER,
    WIDGET_OUTPUT,
    JupyterServer,
    collect_console_errors,
    new_notebook,
    open_in_lab,
    ours,
    start_run_all,
    wait_for_run_all,
    write_notebook,
)
from look_pages import (
    AA,
    ANSWER,
    CONTRAST,
    LOOK,
    PANEL,
    PANEL_RUN,
    THINK,
    ContrastLog,
    close_session,
    set_theme,
)

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
