"""The batch progress widget in JupyterLab in headless Chromium (docs/batch.md#in-a-notebook).

A ``%%agent --map`` cell over 30 rows against a slow scripted server: the widget updates while
the batch runs, Stop ends it (the rest "not run: stopped") and the finished view shows the final
line without the button, then the summary. And ``NotebookProgress`` driven by a cell's own loop:
Stop reaches the kernel mid-cell as a comm message on the kernel's loop.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jupyter_pages import (
    USE_SERVER,
    JupyterServer,
    open_in_lab,
    start_run_all,
    wait_for_run_all,
    write_notebook,
)

PROGRESS = ".ta-batch"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

SETUP = f"""\
from tinyagent.testing import ModelServer, Reply, ScriptedBrain
server = ModelServer(ScriptedBrain(
    lambda request: Reply(text="a slow answer " * 4, chunking="words", delay=0.1)
)).start()
%load_ext tinyagent.notebook
{USE_SERVER}
rows = [f"item {{i}}" for i in range(30)]"""
MAP = "%%agent --map rows -o res --concurrency 2\nDescribe {} in one line"
CHECK = (
    'print((res["error"] == "not run: stopped").sum(), res["error"].isna().sum(), '
    "len(server.requests) < 30)"
)

DRIVEN = """\
import asyncio
from tinyagent.batch._progress import ProgressCounts
from tinyagent.notebook._batch_progress import NotebookProgress
progress = NotebookProgress()
stops = []
progress.on_stop(lambda: stops.append(True))
counts = ProgressCounts(total=30)
progress.start(counts)
for row in range(30):
    if stops:
        break
    counts.done, counts.running, counts.tokens = row, 3, 40 * row
    counts.elapsed += 0.25
    progress.update(counts)
    await asyncio.sleep(0.25)
counts.running, counts.not_run = 0, 30 - counts.done
progress.finish(counts, "stopped" if stops else None)
print("stopped after", counts.done, "rows")"""


def wait_for_text(locator: Any, predicate: Any, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        if locator.count():
            text = locator.first.inner_text()
            if predicate(text):
                return text
        time.sleep(0.05)
    raise AssertionError(f"the progress view never matched; last text: {text!r}")


def done_count(text: str) -> int:
    for part in text.replace("\n", " · ").split("·"):
        words = part.split()
        if len(words) == 2 and words[1] == "done":
            return int(words[0])
    return -1


def test_the_widget_updates_while_the_cell_runs_and_stop_reaches_the_kernel(
    jupyter_server: JupyterServer, page: Any
) -> None:
    notebook = write_notebook(jupyter_server, "batch_progress_driven.ipynb", [DRIVEN])
    open_in_lab(page, jupyter_server, notebook)
    start_run_all(page)
    cell = page.locator(".jp-CodeCell").nth(0)
    view = cell.locator(PROGRESS)
    first = wait_for_text(view, lambda t: done_count(t) >= 2)
    later = wait_for_text(view, lambda t: done_count(t) >= done_count(first) + 3)
    assert "/30 rows" in later and "running" in later and "tokens" in later
    assert "rows/s" in later and "ETA" in later
    width = view.locator(".ta-batch-done").evaluate("n => n.getBoundingClientRect().width")
    assert width > 0, "the bar grows"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    view.first.screenshot(path=str(ARTIFACTS / "batch_progress_running.png"))
    stop = view.locator("button.ta-batch-stop")
    stop.click()
    final = wait_for_text(view, lambda t: "stopped with the Stop button" in t)
    wait_for_run_all(page, jupyter_server, notebook)
    assert view.locator("button.ta-batch-stop").count() == 0, "the button is gone"
    rows = done_count(final)
    assert 0 < rows < 30 and f"{30 - rows} not run" in final
    printed = cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']")
    assert printed.inner_text().strip() == f"stopped after {rows} rows"


def test_a_map_cell_shows_the_widget_updating_and_stop_ends_the_batch(
    jupyter_server: JupyterServer, page: Any
) -> None:
    notebook = write_notebook(jupyter_server, "batch_map.ipynb", [SETUP, MAP, CHECK])
    open_in_lab(page, jupyter_server, notebook)
    start_run_all(page)
    cell = page.locator(".jp-CodeCell").nth(1)
    view = cell.locator(PROGRESS)
    first = wait_for_text(view, lambda t: "/30 rows" in t and "2 running" in t)
    assert "0 done" in first
    later = wait_for_text(view, lambda t: done_count(t) >= 2)
    assert "tokens" in later and "rows/s" in later
    view.locator("button.ta-batch-stop").click()
    final = wait_for_text(view, lambda t: "stopped with the Stop button" in t)
    wait_for_run_all(page, jupyter_server, notebook)
    assert view.locator("button.ta-batch-stop").count() == 0, "the button is gone"
    rows = done_count(final)
    assert 2 <= rows < 30 and f"{30 - rows} not run" in final and "running" in final
    summary = cell.locator(".jp-OutputArea-output[data-mime-type='text/html'] .ta-map-summary")
    assert summary.locator("tbody tr").count() == 5
    assert "stopped with the Stop button" in summary.inner_text()
    check = page.locator(".jp-CodeCell").nth(2).locator(".jp-OutputArea-output")
    stopped, answered, fewer = check.inner_text().split()
    assert int(answered) == rows and int(stopped) == 30 - rows and fewer == "True"
