"""A bare IPython shell with the extension loaded and a clean session, for the notebook tests
that drive ``%%agent`` / ``%agent`` without a kernel; and ``BareShell``, a second shell-like
object for the tests that need two shells in one process."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tinyagent.notebook._conversation import Conversation
from tinyagent.notebook._session import NotebookSession, session_for


def use_script(shell: Any, steps: list[Any], name: str = "bot") -> Any:
    """A scripted Agent (``support.notebook_fakes``) as ``name`` in the namespace; its stream."""
    from support.notebook_fakes import scripted_agent

    agent, stream = scripted_agent(steps)
    shell.user_ns[name] = agent
    return stream


def outputs_text(captured: Any) -> str:
    """What a captured cell printed plus the plain text of what it displayed."""
    return captured.stdout + "\n".join(o.data.get("text/plain", "") for o in captured.outputs)


def session_of(shell: Any) -> NotebookSession:
    session = session_for(shell)
    assert session is not None, "the extension is loaded in this shell"
    return session


def fresh_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> InteractiveShell:
    """The process's InteractiveShell, reset: final rendering, no .env, no provider settings."""
    monkeypatch.setenv("TINYAGENT_RENDER", "final")
    monkeypatch.chdir(tmp_path)
    for name in (
        "TINYAGENT_MODEL",
        "TINYAGENT_PROVIDER",
        "TINYAGENT_BASE_URL",
        "OPENROUTER_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "tinyagent.notebook")
    # the singleton shell (and its session) outlives each test: start every test from scratch
    session = session_of(sh)
    session.stop_servers()
    session.settings.clear()
    session.conversations.clear()
    session.conversations["default"] = Conversation("default")
    magics = sh.find_cell_magic("agent").__self__
    magics.model = magics.provider = magics.base_url = magics.system = None
    for key in ("bot", "_agent_last", "ans"):
        sh.user_ns.pop(key, None)
    return sh


class BareShell:
    """What the extension touches of a terminal shell: a namespace and magic registration."""

    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {}
        self.registered: list[Any] = []

    def register_magics(self, magics: Any) -> None:
        self.registered.append(magics)
