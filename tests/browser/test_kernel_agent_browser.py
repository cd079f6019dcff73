"""``run_python`` in JupyterLab in headless Chromium: the Run / Skip buttons answer a pending call,
the figure shows in the live tool card while the run goes on, and code has Copy buttons.

A scripted loopback model asks for ``run_python`` twice (the first answered Skip, the second Run,
which plots) and then streams a slow answer, so the test sees the figure in the live card before
the run ends; the last cell prints what the code left in the namespace.
"""

from __future__ import annotations

from typing import Any

from jupyter_pages import (
    STATIC_OUTPUT,
    USE_SERVER,
    WIDGET_OUTPUT,
    JupyterServer,
    open_in_lab,
    start_run_all,
    wait_for_run_all,
    write_notebook,
)

PLOT = (
    "import matplotlib.pyplot as plt\n"
    "plt.plot([1, 4, 9, 16])\n"
    "plt.title('squares')\n"
    "ran_plot = True\n"
    "plt.show()"
)
SETUP = f"""\
from tinyagent.testing import ModelServer, Reply, ScriptedBrain, ToolCallSpec
server = ModelServer(ScriptedBrain([
    Reply(tool_calls=[ToolCallSpec("run_python", {{"code": "skipped_value = 1"}})]),
    Reply(tool_calls=[ToolCallSpec("run_python", {{"code": {PLOT!r}}})]),
    Reply(text="The figure shows squares. " * 40 + "THE END", chunk_chars=8, delay=0.05),
])).start()
%load_ext tinyagent.notebook
{USE_SERVER}"""
CELL = "%%agent --kernel\nPlot the squares"
CHECK = "print('skipped_value' in globals(), ran_plot)"


def test_run_and_skip_answer_run_python_and_the_figure_shows_while_the_run_goes_on(
    jupyter_server: JupyterServer, page: Any
) -> None:
    notebook = write_notebook(jupyter_server, "kernel_agent.ipynb", [SETUP, CELL, CHECK])
    open_in_lab(page, jupyter_server, notebook)
    start_run_all(page)
    cell = page.locator(".jp-CodeCell").nth(1)
    live = cell.locator(f"{WIDGET_OUTPUT} .tinyagent-run")

    for choice in ("skip", "run"):
        button = live.locator(f'button[data-choice="{choice}"]')
        button.wait_for(timeout=60_000)
        question = live.locator(".ta-confirm").inner_text()
        assert "run_python" in question and "Always in this conversation" in question
        button.click()

    figure = live.locator('.ta-card img[src^="data:image/png;base64,"]')
    figure.wait_for(timeout=30_000)
    assert figure.evaluate("img => img.naturalWidth > 0"), "the PNG decodes"
    assert "THE END" not in live.inner_text(), "the figure is visible while the run goes on"
    assert live.locator(".ta-card .ta-code .ta-copy").count() >= 1, "the code has a Copy button"
    assert live.locator(".ta-card-skipped, .ta-skipped").count() >= 1, "the skipped call shows so"

    wait_for_run_all(page, jupyter_server, notebook)
    static = cell.locator(STATIC_OUTPUT)
    assert static.locator('img[src^="data:image/png;base64,"]').count() == 1
    assert static.locator(".ta-code .ta-copy").count() >= 2, "both calls' code, with Copy"
    assert "THE END" in static.inner_text()
    check = page.locator(".jp-CodeCell").nth(2).locator(".jp-OutputArea-output")
    assert check.inner_text().strip() == "False True", "Skip did not run; Run did"
