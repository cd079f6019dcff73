"""JupyterLab in headless Chromium: live streaming, the static hand-over, XSS, the panel's Stop.

Starts JupyterLab on 127.0.0.1 with a token (stopped by PID), opens a notebook that streams a
slow scripted answer through ``%%agent`` (live mode: the server sets ``JPY_SESSION_NAME``) and
shows a ``ChatPanel``, runs all cells, and checks the DOM. A screenshot is saved to
``$TINYAGENT_ARTIFACTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

# Skips when Chromium, Playwright or Jupyter are missing come from conftest.py, like the browser
# fixture this test shares with the other browser tests.
REPO = Path(__file__).resolve().parents[2]

SETUP = """\
from tinyagent.testing import ModelServer, Reply, ScriptedBrain
ANSWER = ("Streaming **live** answer.\\n\\n<script>window.__xss = 1</script>\\n\\n"
          "<img src=x onerror=\\"window.__xss = 2\\">\\n\\n[link](javascript:window.__xss=3)\\n\\n"
          "| col a | col b |\\n|---|---|\\n| 1 | 2 |\\n\\n" + "More words here. " * 60 + "\\n\\nTHE END")
slow = ModelServer(ScriptedBrain([Reply(text=ANSWER, chunk_chars=6, delay=0.015)], when_exhausted="repeat")).start()
slower = ModelServer(ScriptedBrain([Reply(text=ANSWER * 3 + " LAST WORD", chunk_chars=6, delay=0.03)])).start()
%load_ext tinyagent.notebook"""
CELL = "%%agent --provider local --base-url {slow.url}\nTell me something"
PANEL = "from tinyagent.notebook import ChatPanel\npanel = ChatPanel()\npanel"
SECOND = "%%agent --name second --provider local --base-url {slower.url}\nAnother long one"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(src) for src in (SETUP, CELL, PANEL, SECOND)]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, tmp_path / "live.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    env = {
        k: v for k, v in os.environ.items() if k != "TINYAGENT_RENDER" and not k.startswith("JPY_")
    }
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={tmp_path}",
        "--ServerApp.port_retries=0",
    ]
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get_json(f"{base}/api/status?token={token}")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "server.log"
                ).read_text()[-2000:]
                time.sleep(0.3)
        yield base, token, tmp_path
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def wait_for_kernel(base: str, token: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = get_json(f"{base}/api/sessions?token={token}")
        if sessions and sessions[0].get("kernel", {}).get("execution_state") == "idle":
            return
        time.sleep(0.3)
    raise AssertionError("the notebook's kernel never became idle")


@pytest.mark.parametrize("front_end", ["lab", "notebook7"])
def test_streams_live_renders_safely_and_the_panel_stops(
    lab: tuple[str, str, Path], front_end: str, browser: Any
) -> None:
    # `browser` is the shared Chromium of conftest.py: one sync Playwright per process at a time.
    base, token, tmp_path = lab
    artifacts = Path(os.environ.get("TINYAGENT_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1300, "height": 1800})
    page = context.new_page()
    try:
        path = "lab/tree/live.ipynb?reset&" if front_end == "lab" else "notebooks/live.ipynb?"
        page.goto(f"{base}/{path}token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60000)
        wait_for_kernel(base, token)
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()

        # live: the run's widget streams (it has the Stop bar while running)
        page.wait_for_selector(".tinyagent-run.ta-running", timeout=60000)
        page.wait_for_function(
            "() => document.querySelector('.tinyagent-run')?.textContent.includes('More words')",
            timeout=30000,
        )
        assert "THE END" not in page.locator(".tinyagent-run").first.inner_text()
        # the bar says what the run is doing and for how long
        bar = page.locator(".tinyagent-run.ta-running .ta-bar").first
        assert bar.locator(".ta-live-status").inner_text() == "writing the answer…"
        page.wait_for_function(
            "() => /^\\d+ s$/.test(document.querySelector('.tinyagent-run.ta-running .ta-elapsed')"
            "?.textContent || '')",
            timeout=5000,
        )
        # the end: replaced by the static rendering (no bar), whole answer, table, no script run
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-OutputArea-output .tinyagent-run')].some(e => !e.querySelector('.ta-bar') && e.textContent.includes('THE END'))",
            timeout=30000,
        )
        static = page.locator(".jp-OutputArea-output .tinyagent-run").first
        assert static.locator("table").count() == 1
        assert static.locator("strong", has_text="live").count() == 1
        assert page.evaluate("() => window.__xss") is None
        assert static.locator("script").count() == 0
        assert page.locator(".tinyagent [onerror]").count() == 0
        assert page.locator('.tinyagent a[href^="javascript"]').count() == 0

        # Stop in a running cell's own widget is processed mid-run (transformer path)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.tinyagent-run.ta-running')].some(e => e.textContent.includes('More words'))",
            timeout=30000,
        )
        clicked = time.monotonic()
        page.locator(".tinyagent-run.ta-running .ta-stop").first.click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-OutputArea-output .tinyagent-run')].some(e => !e.querySelector('.ta-bar') && e.textContent.includes('Stopped'))",
            timeout=10000,
        )
        assert time.monotonic() - clicked < 3
        stopped = page.locator(
            ".jp-OutputArea-output .tinyagent-run", has_text="Stopped"
        ).first.inner_text()
        assert "LAST WORD" not in stopped

        # the panel: Enter sends; while running the Send button reads "Stop" and stops mid-stream
        panel = page.locator(".tinyagent-panel").first
        panel.wait_for(timeout=30000)
        box = panel.locator("textarea")
        box.fill("Hello panel")
        box.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('.tinyagent-panel .ta-transcript')?.textContent.includes('More words')",
            timeout=30000,
        )
        assert panel.locator(".ta-send").inner_text() == "Stop"
        panel.locator(".ta-send").click()
        page.wait_for_function(
            "() => document.querySelector('.tinyagent-panel .ta-transcript')?.textContent.includes('Stopped')",
            timeout=10000,
        )
        transcript = panel.locator(".ta-transcript").inner_text()
        assert "Hello panel" in transcript and "THE END" not in transcript
        page.wait_for_function(
            "() => document.querySelector('.tinyagent-panel .ta-send')?.textContent === 'Send'",
            timeout=10000,
        )
        assert page.evaluate("() => window.__xss") is None
    finally:
        page.screenshot(path=str(artifacts / f"notebook_live_{front_end}.png"), full_page=True)
        context.close()
