"""Running the loopback server in its own process: :func:`spawn_server` and :class:`SpawnedServer`.

A separate process keeps the server's CPU off the client's books (benchmarks) and survives the
client being interrupted (kernel tests). The child is ``python -m tinyagent.testing``; its
request log is read over HTTP (``GET /_requests``).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._brains import ScriptedBrain
from ._cassette import ReplayBrain
from ._demo import DemoBrain
from ._reply import Reply

__all__ = ["SpawnedServer", "spawn_server"]


class SpawnedServer:
    """A model server running in a child process; stop it with :meth:`stop` (or ``with``)."""

    def __init__(self, process: subprocess.Popen[str], port: int, script: Path | None) -> None:
        self.process = process
        self.port = port
        self.host = "127.0.0.1"
        self._script = script

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def requests(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The child's request log (``GET /_requests``): a list of dicts, oldest first."""
        with urllib.request.urlopen(f"http://{self.host}:{self.port}/_requests",
                                    timeout=timeout) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def clear_requests(self, timeout: float = 5.0) -> None:
        req = urllib.request.Request(f"http://{self.host}:{self.port}/_requests", method="DELETE")
        with urllib.request.urlopen(req, timeout=timeout) as response:
            response.read()

    def stop(self, timeout: float = 3.0) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after ``timeout``) and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self._script is not None:
            self._script.unlink(missing_ok=True)
            self._script = None

    def __enter__(self) -> SpawnedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _brain_arguments(brain: Any) -> tuple[list[str], Path | None]:
    """Command-line arguments that rebuild ``brain`` in the child."""
    if brain is None or brain == "demo":
        return ["--brain", "demo"], None
    if isinstance(brain, ReplayBrain):
        return ["--replay", str(brain.path)], None
    if isinstance(brain, DemoBrain):
        return ["--brain", "demo", "--delay", repr(brain.delay)], None
    if isinstance(brain, str):
        if ":" not in brain:
            raise ValueError(f"brain must be 'demo' or 'module:attribute', got {brain!r}")
        return ["--brain", brain], None
    if isinstance(brain, Reply):
        script = {"turns": [brain.to_dict()], "when_exhausted": "repeat"}
    elif isinstance(brain, ScriptedBrain):
        script = brain.to_dict()
    elif isinstance(brain, Sequence):
        script = ScriptedBrain(brain).to_dict()
    else:
        raise TypeError("spawn_server takes 'demo', a 'module:attribute' brain factory, a "
                        "DemoBrain, a Reply, a list of turns or a ScriptedBrain without functions")
    handle, name = tempfile.mkstemp(prefix="tinyagent-script-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        json.dump(script, f)
    return ["--script", name], Path(name)


def spawn_server(
    brain: Any = "demo",
    *,
    port: int = 0,
    max_seconds: float | None = 600.0,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 30.0,
) -> SpawnedServer:
    """Start ``python -m tinyagent.testing`` and wait for it to listen.

    ``brain``: ``"demo"``, a ``"module:attribute"`` brain (or factory) importable in the child,
    a :class:`DemoBrain`, a :class:`ReplayBrain`, a :class:`Reply`, a list of turns or a :class:`ScriptedBrain` (whose
    turns are sent as JSON, so functions are not allowed). The child stops by itself after
    ``max_seconds`` (None: never) so a forgotten server cannot outlive a test run for long.
    """
    args, script = _brain_arguments(brain)
    command = [python or sys.executable, "-m", "tinyagent.testing", "--port", str(port), *args]
    if max_seconds is not None:
        command += ["--max-seconds", repr(float(max_seconds))]
    child_env = dict(os.environ if env is None else env)
    # the child must import this very tinyagent, also from a source checkout
    package_root = str(Path(__file__).resolve().parents[2])
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, child_env.get("PYTHONPATH", "")) if p)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=child_env)
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + startup_timeout
    line = ""
    try:
        while not line:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or process.poll() is not None:
                break
            if selector.select(min(remaining, 0.2)):
                line = process.stdout.readline()
                if not line:
                    break
    finally:
        selector.close()
    if not line:
        process.kill()
        process.wait()
        if script is not None:
            script.unlink(missing_ok=True)
        raise RuntimeError(f"the model server did not start within {startup_timeout}s "
                           f"(exit code {process.returncode}); command: {' '.join(command)}")
    info = json.loads(line)
    return SpawnedServer(process, int(info["port"]), script)
