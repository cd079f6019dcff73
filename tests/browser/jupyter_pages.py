"""Driving JupyterLab / Notebook 7 pages: notebooks the tests write, opening them, Run All, and a
sampler that records what each cell's outputs show while cells run.

Shared by the browser test modules (imported as a sibling module, like ``tests/support/``).
"""

from __future__ import annotations

import time
from typing import Any

import nbformat

JupyterServer = Any  # the fixture type lives in conftest.py (not importable as a module)

RUN_TIMEOUT_MS = 90_000  # whole-notebook runs on a loaded 2-core machine

# points the default %%agent conversation at the test's scripted server
USE_SERVER = (
    'get_ipython().run_line_magic("agent", '
    'f"config provider=demo model=scripted base_url={server.url}")'
)
# the live anywidget view renders into a panel output without a data-mime-type; the static
# rendering that replaces it when the run ends is a text/html output
WIDGET_OUTPUT = '.jp-OutputArea-output:not([data-mime-type="text/html"])'
STATIC_OUTPUT = '.jp-OutputArea-output[data-mime-type="text/html"]'


def new_notebook(cells: list[str]) -> Any:
    """A notebook of code cells on the python3 kernel."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def write_notebook(server: JupyterServer, name: str, cells: list[str]) -> str:
    (server.root / name).write_text(nbformat.writes(new_notebook(cells)), encoding="utf-8")
    return name


def collect_console_errors(page: Any) -> list[str]:
    """The page's console errors and uncaught exceptions from now on, each with where it came
    from (the list fills as the page runs)."""
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(f"{m.text} @ {m.location.get('url')}") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(f"{exc} @ {exc.stack}"))
    return errors


def ours(errors: list[str]) -> list[str]:
    """The errors not from Notebook 7's own bundles: it logs two of its own on every page (a
    settings schema it cannot read, a file browser command it does not have)."""
    return [e for e in errors if "/static/notebook/" not in e]


def open_in_lab(page: Any, server: JupyterServer, notebook: str) -> None:
    page.goto(server.lab_url(notebook))
    server.wait_for_idle_kernel(notebook)
    page.wait_for_function(
        "window.jupyterapp !== undefined && !!document.querySelector('.jp-Notebook')"
    )
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
    wait_for_connected_kernel(page)


def open_in_notebook7(page: Any, server: JupyterServer, notebook: str) -> None:
    page.goto(server.notebook7_url(notebook))
    server.wait_for_idle_kernel(notebook)
    page.wait_for_function(
        "window.jupyterapp !== undefined && !!document.querySelector('.jp-Notebook .jp-Cell')"
    )
    wait_for_connected_kernel(page)


def wait_for_connected_kernel(page: Any) -> None:
    """The page's own view of the kernel: connected and idle (the server's idle kernel may not
    be attached to the page yet, and Run All is silently dropped until it is)."""
    page.wait_for_function(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const kernel = panel?.sessionContext?.session?.kernel;
            return !!panel?.sessionContext?.isReady && kernel?.connectionStatus === 'connected'
                && kernel?.status === 'idle';
        }""",
        timeout=60_000,
    )


ALL_PROMPTS_NUMBERED = (
    "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
    ".every(p => /\\[\\d+\\]/.test(p.textContent))"
)


def start_run_all(page: Any) -> None:
    """Run All without awaiting the command's promise (it resolves only when the cells are done)."""
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def wait_for_run_all(page: Any, server: JupyterServer, notebook: str) -> None:
    page.wait_for_function(ALL_PROMPTS_NUMBERED, timeout=RUN_TIMEOUT_MS)
    server.wait_for_idle_kernel(notebook)


def run_all(page: Any, server: JupyterServer, notebook: str) -> None:
    """Clear stale outputs (a tutorial is saved with outputs), run every cell, wait for the end."""
    page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.wait_for_function(
        "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".every(p => !/\\[\\d+\\]/.test(p.textContent))"
    )
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    wait_for_run_all(page, server, notebook)


def wait_for_live_text(cell: Any, text: str, timeout: float = 30.0) -> None:
    """Wait until the cell's live widget view shows ``text``; on timeout, fail with a timeline of
    what the cell's outputs showed instead (a blank live view and a late static rendering are
    different bugs)."""
    live = cell.locator(f"{WIDGET_OUTPUT} .tinyagent-run")
    timeline: list[str] = []
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if text in " ".join(live.all_inner_texts()):
            return
        snapshot = cell.locator(".jp-OutputArea-output").evaluate_all(
            "nodes => nodes.map(n => (n.getAttribute('data-mime-type') || 'widget') + '='"
            " + n.innerText.replace(/\\s+/g, ' ').slice(0, 40)).join(' | ')"
        )
        if not timeline or not timeline[-1].endswith(snapshot):
            timeline.append(f"{time.monotonic() - started:5.1f}s {snapshot}")
        time.sleep(0.1)
    raise AssertionError(
        f"live view never showed {text!r}; outputs over time:\n" + "\n".join(timeline)
    )


# In-page sampler: every 20 ms (in the page's own event loop, so no Playwright round trip sits
# between samples) it records, per code cell, which run view the cell shows and its text, but
# only when that changed. A word that is on the page for a few frames and then lost is seen.
_START_SAMPLER = """({interval, liveSelector, staticSelector}) => {
    const started = performance.now();
    const log = [];
    const last = new Map();
    const sample = () => {
        document.querySelectorAll('.jp-Notebook .jp-CodeCell').forEach((cell, index) => {
            const live = cell.querySelector(liveSelector);
            const done = cell.querySelector(staticSelector);
            let state;
            if (live) {
                const body = live.querySelector('.ta-body');
                state = ['live', body ? body.innerText : '', live.querySelectorAll('.ta-part').length];
            } else if (done) {
                state = ['static', done.innerText, 0];
            } else {
                return;
            }
            const key = JSON.stringify(state);
            if (last.get(index) === key) return;
            last.set(index, key);
            log.push([Math.round(performance.now() - started), index, ...state]);
        });
    };
    window.__taSamples = log;
    window.__taSample = sample;
    window.__taSampler = setInterval(sample, interval);
}"""


def start_sampler(page: Any, interval_ms: int = 20) -> None:
    page.evaluate(
        _START_SAMPLER,
        {
            "interval": interval_ms,
            "liveSelector": f"{WIDGET_OUTPUT} .tinyagent-run",
            "staticSelector": f"{STATIC_OUTPUT} .tinyagent-run",
        },
    )


def stop_sampler(page: Any) -> list[tuple[int, int, str, str, int]]:
    """Take a last sample and stop; the samples as (ms since start, cell index, "live"|"static",
    text, number of .ta-part elements in a live view)."""
    samples = page.evaluate(
        "() => { clearInterval(window.__taSampler); window.__taSample();"
        " return window.__taSamples; }"
    )
    return [tuple(sample) for sample in samples]
