"""The per-shell ``NotebookSession``: loading, reloading and unloading keep it, two shells never
share one, and the magics' traitlets reach it (docs/notebook.md#session)."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from support.notebook_fakes import Step, scripted_agent
from support.notebook_shell import BareShell, fresh_shell, session_of
from traitlets.config import Config

from tinyagent.notebook import load_ipython_extension
from tinyagent.notebook._interrupt import agent_cell_transformer, uninstall_transformer
from tinyagent.notebook._magics import AgentMagics
from tinyagent.notebook._session import open_session


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> InteractiveShell:
    return fresh_shell(monkeypatch, tmp_path)


def test_loading_twice_is_harmless_and_help_lists_options(shell: InteractiveShell) -> None:
    session = session_of(shell)
    kept = session.conversation("kept")
    session.start_demo()
    shell.run_line_magic("load_ext", "tinyagent.notebook")
    assert session.demo_server is not None, "a second %load_ext is a no-op"
    shell.run_line_magic("reload_ext", "tinyagent.notebook")
    # reload = unload (servers stopped) + load (the shell keeps its session and conversations)
    assert session_of(shell) is session and session.conversation("kept") is kept
    assert session.demo_server is None
    shell.run_line_magic("unload_ext", "tinyagent.notebook")
    shell.run_line_magic("load_ext", "tinyagent.notebook")
    assert session_of(shell) is session
    registered = [c for c in shell.configurables if isinstance(c, AgentMagics)]
    assert len(registered) == 1, "the magics are registered once per shell"
    cleanup = shell.input_transformers_cleanup
    assert agent_cell_transformer not in cleanup, "terminal shells keep the synchronous path"
    shell.kernel = object()  # what makes a shell a kernel's
    try:
        shell.run_line_magic("reload_ext", "tinyagent.notebook")
        shell.run_line_magic("load_ext", "tinyagent.notebook")
        assert cleanup.count(agent_cell_transformer) == 1
    finally:
        del shell.kernel
        uninstall_transformer(shell)
    doc = shell.find_cell_magic("agent").__doc__
    for option in (
        "--model",
        "--tools",
        "--agent",
        "--bg",
        "--confirm",
        "--format",
        "--no-cache",
        "steer TEXT",
        "export PATH",
    ):
        assert option in doc


def test_two_shells_never_share_a_session(shell: InteractiveShell) -> None:
    other = BareShell()
    load_ipython_extension(other)
    load_ipython_extension(other)
    [other_magics] = other.registered
    mine, theirs = session_of(shell), session_of(other)
    assert theirs is not mine and theirs.shell is other
    agent, _ = scripted_agent([Step(text="only in the other shell")])
    theirs.conversation()._agent = agent
    theirs.conversation().sticky.update(
        provider="local", base_url="http://127.0.0.1:9/v1/chat/completions"
    )
    with capture_output():
        # the other shell's magics run against the other shell's session and namespace
        other_magics.agent("--quiet -o ans", "hello")
        shell.run_line_magic("agent", "config model=mine-only")
    assert other.user_ns["ans"].content[0].text == "only in the other shell"
    assert "ans" not in shell.user_ns and "_agent_last" not in shell.user_ns
    assert mine.conversation().agent.state.messages == []
    assert mine.settings == {"model": "mine-only"} and theirs.settings == {}


def test_configured_traitlets_reach_the_session_when_the_magics_are_made() -> None:
    # ipython_config.py values are loaded while AgentMagics is constructed, before any
    # %config: they must be in the session's traitlets layer from the start
    other = BareShell()
    session, created = open_session(other)
    assert created and open_session(other) == (session, False)
    config = Config()
    config.AgentMagics.model = "from-config"
    AgentMagics(shell=other, config=config)
    resolved = session.resolve(session.conversation())
    assert resolved.model == "from-config"
    assert resolved.sources["model"] == "AgentMagics (traitlets)"
