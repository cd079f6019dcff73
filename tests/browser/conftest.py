"""Real-browser tests (docs/notebook.md#tests): JupyterLab / Notebook 7 driven by headless Chromium.

A session-scoped fixture starts one Jupyter server on 127.0.0.1 (token auth, ``--allow-root``) in a
temporary copy of the tutorials, plus the small notebooks the tests write. Its kernels render
**live** (the server sets ``JPY_SESSION_NAME``), so the root conftest's ``TINYAGENT_RENDER=final``
is removed from the server's environment. Chromium is Debian's ``/usr/bin/chromium``, launched by
Playwright for Python; ``playwright install`` is never used. Screenshots go to
``test-artifacts/browser/``.

The tests skip, with the reason, when Chromium or Playwright is missing (CI installs both).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT = 60.0  # a busy CI machine; the usual start is 2-5 s


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: drives JupyterLab/Notebook 7 in headless Chromium (docs/notebook.md#tests)",
    )


def _missing_requirement() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    try:
        import jupyterlab  # noqa: F401
        import notebook  # noqa: F401
    except ImportError:
        return "jupyterlab and notebook are needed (pip install jupyterlab notebook)"
    return None


@pytest.hookimpl(tryfirst=True)  # mark before `-m browser` / `-m 'not browser'` selects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing_requirement()
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class JupyterServer:
    base: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.base}{path}", params={"token": self.token}, timeout=10.0, **kwargs
        )

    def lab_url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{notebook}?reset&token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        return f"{self.base}/notebooks/{notebook}?token={self.token}"

    def session(self, notebook: str) -> dict[str, Any] | None:
        for session in self.api("GET", "/api/sessions").json():
            if session.get("path") == notebook:
                return session  # type: ignore[no-any-return]
        return None

    def wait_for_idle_kernel(self, notebook: str, timeout: float = 60.0) -> dict[str, Any]:
        """The kernel of ``notebook``'s session, once it exists and is idle (the page's status
        reads idle before any kernel exists, so ask the server)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            session = self.session(notebook)
            if session and session["kernel"]["execution_state"] == "idle":
                return session
            time.sleep(0.2)
        raise TimeoutError(f"no idle kernel for {notebook} within {timeout} s")

    def shutdown_sessions(self) -> None:
        for session in self.api("GET", "/api/sessions").json():
            self.api("DELETE", f"/api/sessions/{session['id']}")


def _lab_settings(directory: Path) -> Path:
    """User settings for the test server: every cell stays in the DOM (Lab 4 virtualizes
    off-screen cells by default) and no news pop-up covers the page."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for name, value in settings.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")
    return directory


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    root = tmp_path_factory.mktemp("notebooks")
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root / notebook.name)
    token = secrets.token_hex(16)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TINYAGENT_RENDER", "TINYAGENT_LIVE")}
    env["JUPYTERLAB_SETTINGS_DIR"] = str(_lab_settings(tmp_path_factory.mktemp("lab-settings")))
    log = (root / "jupyter-server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
        ],
        env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, process)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early; see {root / 'jupyter-server.log'}")
            try:
                if server.api("GET", "/api/status").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter lab did not answer within {SERVER_START_TIMEOUT} s")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()  # by PID: this process only
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


# Module scope: Playwright's sync API runs its own event loop, and a second sync_playwright() (e.g.
# in another test module that drives its own browser) fails while one is still open.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - a failed screenshot must not hide the test result
            pass
        context.close()
