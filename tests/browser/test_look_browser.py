"""How the chat panel and the cell view look, in JupyterLab and Notebook 7, light and dark themes
(headless Chromium; docs/notebook.md#tests).

* Contrast: every text of a ``.tinyagent`` root (panel and cell view, live and static, the
  composer's placeholder) against its background composited up the tree, at least WCAG AA
  (4.5:1; disabled controls exempt), sampled while a slow scripted run streams (retry status,
  thinking, a tool card, an answer with a table, a list, code, a quote) and after it, with a
  stopped and an error banner. The minimum per theme is printed (``-s`` shows it). The same test
  saves light and dark screenshots of the panel and of a cell under ``test-artifacts/look/``.
* The batch progress widget (its own stylesheet): the same contrast check while it runs and
  when it has finished.
* No console errors on any of these pages. (Live against saved, and untrusted notebooks:
  test_look_saved_browser.py.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_pages import (
    ALL_PROMPTS_NUMBERED,
    STATIC_OUTPUT,
    WIDGET_OUTPUT,
    JupyterServer,
    collect_console_errors,
    open_in_lab,
    open_in_notebook7,
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
STOPPED = "%%agent --name look\nKeep talking"
CONFIRM = "%%agent --name look -k --confirm\nList them again"
FAILING = "%%agent --name look\nOne more"
LOOK_CELLS = [SETUP, CELL, PANEL, PANEL_RUN, STOPPED, CONFIRM, FAILING]
# what the test does in a cell's live view while Run All goes on: (cell, text it waits for,
# button it then clicks); the contrast is sampled before the click
CLICKS = [(4, "will be stopped", "button.ta-stop"), (5, "Run tool", 'button[data-choice="run"]')]


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
