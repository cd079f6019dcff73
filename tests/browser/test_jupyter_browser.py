"""JupyterLab 4 and Notebook 7 in headless Chromium: tutorials, the chat panel, XSS, saved output.

Every test drives the real front end against a real kernel: the notebook is opened with
``?reset``, the session's kernel is awaited through ``/api/sessions``, cells run through the
``notebook:run-all-cells`` command, and the assertions read the rendered DOM.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from jupyter_pages import (
    STATIC_OUTPUT,
    USE_SERVER,
    WIDGET_OUTPUT,
    JupyterServer,
    open_in_lab,
    open_in_notebook7,
    run_all,
    start_run_all,
    wait_for_live_text,
    write_notebook,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def run_views(page: Any) -> Any:
    """Rendered runs: the live widget while a run streams, the static HTML once it ended."""
    return page.locator(".jp-OutputArea-output .tinyagent-run")


def test_tutorial_04_runs_in_lab_with_tool_cards_and_final_state(
    page: Any, jupyter_server: JupyterServer
) -> None:
    notebook = "04_agent_magic.ipynb"
    open_in_lab(page, jupyter_server, notebook)
    run_all(page, jupyter_server, notebook)
    # every finished run was replaced by its static rendering (what a saved notebook keeps)
    views = page.locator(f"{STATIC_OUTPUT} .tinyagent-run")
    assert views.count() >= 5  # one per %%agent cell that renders
    assert page.locator(f"{WIDGET_OUTPUT} .tinyagent-run").count() == 0
    first = views.nth(0).inner_text()
    assert "What is a Jupyter magic?" in first and "offline demo model" in first
    assert "tokens in" in first  # the per-turn footer
    # the tools cell: one card per call, each done, with its result
    cards = views.locator(".ta-card")
    assert cards.count() == 2
    assert [b.strip() for b in cards.locator(".ta-badge").all_inner_texts()] == ["done", "done"]
    assert "4" in cards.nth(1).locator(".ta-result").inner_text()
    # the final state: no run is still marked as running, no error banner
    assert page.locator(".tinyagent-run.ta-running").count() == 0
    assert page.locator(".tinyagent .ta-banner").count() == 0
    # a plain print cell after --out shows the stored answer
    outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
    assert any("The word_count tool returned" in text for text in outputs)


def test_run_streams_live_then_leaves_static_rendering(
    page: Any, jupyter_server: JupyterServer
) -> None:
    notebook = write_notebook(jupyter_server, "stream_test.ipynb", [
        "%load_ext tinyagent.notebook\n"
        "from tinyagent.testing import ModelServer, Reply, ToolCallSpec, ScriptedBrain\n"
        "WORDS = ' '.join(f'word{i}' for i in range(60))\n"
        "server = ModelServer(ScriptedBrain([\n"
        "    Reply(tool_calls=[ToolCallSpec('shout', {'text': 'hi'})]),\n"
        "    Reply(text=WORDS, chunking='words', delay=0.05)])).start()\n"
        "def shout(text: str) -> str:\n"
        "    \"Shout a text.\"\n"
        "    return text.upper()\n"
        f"{USE_SERVER}",
        "%%agent --tools shout\nGo.",
    ])  # fmt: skip
    open_in_lab(page, jupyter_server, notebook)
    start_run_all(page)
    live = page.locator(f"{WIDGET_OUTPUT} .tinyagent-run")
    live.get_by_text("word5", exact=False).wait_for(timeout=30_000)
    partial = live.inner_text()
    assert "word59" not in partial  # seen mid-stream, before the end
    assert "HI" in live.locator(".ta-card .ta-result").inner_text()  # the tool card, done
    static = page.locator(f"{STATIC_OUTPUT} .tinyagent-run")
    static.get_by_text("word59", exact=False).wait_for(timeout=15_000)
    assert live.count() == 0  # the widget was replaced, not duplicated
    assert static.locator(".ta-card .ta-badge").inner_text().strip() == "done"


def test_kernel_interrupt_and_cell_stop_button_end_runs(
    page: Any, jupyter_server: JupyterServer
) -> None:
    notebook = write_notebook(jupyter_server, "interrupt_test.ipynb", [
        "%load_ext tinyagent.notebook\n"
        "from tinyagent.testing import ModelServer, Reply\n"
        "SLOW = ' '.join(f'word{i}' for i in range(300))\n"
        "server = ModelServer(Reply(text=SLOW, chunking='words', delay=0.05)).start()\n"
        f"{USE_SERVER}",
        "%%agent\nFirst slow answer.",
        "%%agent\nSecond slow answer.",
        "print('next cell ran after', _agent_last.stop_reason)",
    ])  # fmt: skip
    open_in_lab(page, jupyter_server, notebook)
    start_run_all(page)
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    live = f"{WIDGET_OUTPUT} .tinyagent-run"

    # the kernel's interrupt (the toolbar's stop button) ends the first run mid-stream
    wait_for_live_text(cells.nth(1), "word5")
    page.evaluate("window.jupyterapp.commands.execute('notebook:interrupt-kernel')")
    first = cells.nth(1).locator(f"{STATIC_OUTPUT} .tinyagent-run")
    first.get_by_text("stopped").wait_for(timeout=5_000)
    assert "word299" not in first.inner_text()

    # the next %%agent cell works normally; its own Stop button ends it mid-stream
    second_live = cells.nth(2).locator(live)
    wait_for_live_text(cells.nth(2), "word5")
    second_live.locator("button.ta-stop").click()
    second = cells.nth(2).locator(f"{STATIC_OUTPUT} .tinyagent-run")
    second.get_by_text("stopped").wait_for(timeout=5_000)
    assert "word299" not in second.inner_text()
    cells.nth(3).get_by_text("next cell ran after aborted").wait_for(timeout=10_000)


def _panel_notebook(server: JupyterServer) -> str:
    return write_notebook(server, "panel_test.ipynb", [
        "%load_ext tinyagent.notebook\n"
        "from tinyagent import Agent, AgentOptions\n"
        "from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions\n"
        "from tinyagent.notebook import ChatPanel\n"
        "from tinyagent.testing import ModelServer, Reply, ScriptedBrain\n"
        "SLOW = ' '.join(f'word{i}' for i in range(300))\n"
        "server = ModelServer(ScriptedBrain([Reply(text='Hello from the panel.'),\n"
        "    Reply(text=SLOW, chunking='words', delay=0.05)], when_exhausted='repeat')).start()\n"
        "agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))\n"
        "agent.set_model(OpenAICompatModel(provider='demo', id='scripted', base_url=server.url))",
        "panel = ChatPanel(agent)\npanel",
    ])  # fmt: skip


def test_chat_panel_send_and_stop_mid_stream(page: Any, jupyter_server: JupyterServer) -> None:
    notebook = _panel_notebook(jupyter_server)
    open_in_lab(page, jupyter_server, notebook)
    run_all(page, jupyter_server, notebook)
    panel = page.locator(".tinyagent-panel")
    panel.wait_for(timeout=30_000)
    transcript = panel.locator(".ta-transcript")
    send = panel.locator("button.ta-send")

    panel.locator("textarea.ta-input").fill("Hi there")
    send.click()
    transcript.get_by_text("Hello from the panel.").wait_for(timeout=10_000)
    assert "Hi there" in transcript.inner_text()  # the user's message is shown too
    page.wait_for_function(
        "document.querySelector('.tinyagent-panel button.ta-send').textContent === 'Send'"
    )

    panel.locator("textarea.ta-input").fill("Now stream slowly")
    panel.locator("textarea.ta-input").press("Enter")  # Enter sends, like the button
    transcript.get_by_text("word5", exact=False).wait_for(timeout=10_000)
    # while running, the one button is Stop; typed text turns it into Queue (steering)
    assert send.inner_text() == "Stop" and send.get_attribute("data-state") == "stop"
    panel.locator("textarea.ta-input").fill("a steer")
    assert send.inner_text() == "Queue"
    panel.locator("textarea.ta-input").fill("")
    send.click()
    page.wait_for_function(
        "document.querySelector('.tinyagent-panel button.ta-send').textContent === 'Send'",
        timeout=5_000,
    )
    stopped_text = transcript.inner_text()
    assert "stopped" in stopped_text.lower()
    time.sleep(1.0)  # the stream was cancelled: nothing more arrives
    assert transcript.inner_text() == stopped_text
    assert "word299" not in stopped_text


XSS_REPLY = (
    'Look: <script>window.__xss = 1</script> and <img src=x onerror="window.__xss = 2">'
    ' and [a link](javascript:window.__xss=3) and <b onmouseover="window.__xss=4">bold</b>.'
)


# reasoning is rendered as Markdown too (in the collapsed "Thinking" section)
XSS_REASONING = 'Thinking <svg onload="window.__xss = 5"></svg><iframe src="javascript:1"></iframe>'


def test_model_output_cannot_run_script(page: Any, jupyter_server: JupyterServer) -> None:
    notebook = write_notebook(jupyter_server, "xss_test.ipynb", [
        "%load_ext tinyagent.notebook\n"
        "from tinyagent.testing import ModelServer, Reply\n"
        f"server = ModelServer(Reply(text={XSS_REPLY!r}, reasoning={XSS_REASONING!r})).start()\n"
        f"{USE_SERVER}",
        "%%agent\nSay something nasty.",
    ])  # fmt: skip
    open_in_lab(page, jupyter_server, notebook)
    run_all(page, jupyter_server, notebook)
    view = run_views(page).first
    view.get_by_text("bold").wait_for(timeout=10_000)
    for image in view.locator("img").all():  # a broken image would fire onerror, if kept
        image.dispatch_event("error")
    for bold in view.locator("b").all():
        bold.hover()
    time.sleep(0.5)
    assert page.evaluate("window.__xss") is None
    assert view.locator("script, iframe").count() == 0
    assert (
        page.evaluate(
            "[...document.querySelectorAll('.tinyagent *')].some(n => [...n.attributes]"
            ".some(a => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value)))"
        )
        is False
    )

    # the saved notebook, reopened without running anything, shows the static rendering
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    _wait_saved_with_html(jupyter_server.root / notebook)
    jupyter_server.shutdown_sessions()
    page.goto(jupyter_server.lab_url(notebook))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
    static = page.locator('.jp-OutputArea-output[data-mime-type="text/html"] .tinyagent')
    static.first.wait_for(timeout=15_000)
    assert "bold" in static.first.inner_text()
    time.sleep(0.5)
    assert page.evaluate("window.__xss") is None

    # and with no kernel and no Jupyter at all: nbconvert's HTML export of the saved notebook
    html_page = export_html(jupyter_server.root / notebook)
    page.goto(html_page.as_uri())
    exported = page.locator(".tinyagent-run").first
    exported.get_by_text("bold").wait_for(timeout=10_000)
    assert "Say something nasty." in page.locator("body").inner_text()
    time.sleep(0.5)
    assert page.evaluate("window.__xss") is None


def export_html(notebook: Path) -> Path:
    """nbconvert's HTML export (what GitHub-like static viewers show): no kernel involved."""
    from nbconvert import HTMLExporter

    body, _resources = HTMLExporter().from_filename(str(notebook))
    target = ARTIFACTS / f"{notebook.stem}.html"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return target


def _wait_saved_with_html(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            nb = {"cells": []}
        outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        if any("text/html" in o.get("data", {}) for o in outputs):
            return
        time.sleep(0.2)
    raise AssertionError(f"{path.name} was not saved with a static text/html rendering")


def test_saved_tutorial_reopened_without_running_shows_static_rendering(
    page: Any, jupyter_server: JupyterServer
) -> None:
    notebook = "02_tools.ipynb"  # committed with final-mode outputs; nothing is run here
    page.goto(jupyter_server.lab_url(notebook))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
    page.get_by_text('The sum tool returned "42".').first.wait_for(timeout=15_000)
    assert page.get_by_text("Invalid arguments for tool 'repeat'").count() >= 1


def test_notebook7_runs_a_tutorial(page: Any, jupyter_server: JupyterServer) -> None:
    notebook = "01_quickstart.ipynb"
    open_in_notebook7(page, jupyter_server, notebook)
    run_all(page, jupyter_server, notebook)
    outputs = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
    assert "The offline demo model is running" in outputs
    assert "What is the capital of France?" in outputs
    assert "Demo model stopped." in outputs
