"""``%agent`` subcommands and the configuration they show, through a bare IPython shell: help,
config precedence, keys never shown, doctor, history/usage/export/load."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from support.notebook_fakes import Step, scripted_agent
from support.notebook_shell import fresh_shell, outputs_text, session_of

from tinyagent.notebook._magics import AgentMagics

SECRET = "sk-or-v1-THIS-IS-A-SECRET-0123456789"


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> InteractiveShell:
    return fresh_shell(monkeypatch, tmp_path)


def test_missing_key_runs_nothing_and_names_the_variable_and_demo(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        shell.run_cell_magic("agent", "", "hello")
    text = outputs_text(captured)
    assert "OPENROUTER_API_KEY" in text and "%agent demo" in text
    assert len(captured.outputs) == 1


def test_key_is_never_shown_and_dotenv_does_not_override(
    shell: InteractiveShell, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(f"OPENROUTER_API_KEY={SECRET}\nTINYAGENT_MODEL='from-dotenv'\n")
    monkeypatch.setenv("TINYAGENT_MODEL", "from-env")
    with capture_output() as captured:
        shell.run_line_magic("agent", "config")
        shell.run_line_magic("agent", "config model=override")
    text = outputs_text(captured) + "".join(o.data.get("text/html", "") for o in captured.outputs)
    assert os.environ["OPENROUTER_API_KEY"] == SECRET
    assert "OPENROUTER_API_KEY (set)" in text and SECRET not in text
    assert "from-env" in text and "from-dotenv" not in text and "override" in text
    monkeypatch.delenv("OPENROUTER_API_KEY")
    with pytest.raises(UsageError, match="environment"):
        shell.run_line_magic("agent", "config api_key=abc")


def test_config_precedence_option_over_session_over_traitlets_over_env(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = session_of(shell)
    monkeypatch.setenv("TINYAGENT_MODEL", "env-model")
    conv = session.conversations["default"]
    assert conv.resolve(session.config_layers(), {}).model == "env-model"
    shell.run_line_magic("config", "AgentMagics.model = 'trait-model'")
    assert conv.resolve(session.config_layers(), {}).model == "trait-model"
    with capture_output():
        shell.run_line_magic("agent", "config model=session-model")
    assert conv.resolve(session.config_layers(), {}).model == "session-model"
    conv.sticky["model"] = "option-model"
    resolved = conv.resolve(session.config_layers(), {})
    assert resolved.model == "option-model" and resolved.sources["model"] == "conversation"


def test_history_usage_export_and_load_round_trip(shell: InteractiveShell, tmp_path: Any) -> None:
    session = session_of(shell)
    agent, _ = scripted_agent(
        [
            Step(
                text="The answer is 4.",
                usage={
                    "input": 12,
                    "output": 5,
                    "cache_read": 3,
                    "cache_write": 0,
                    "total_tokens": 17,
                    "cost": {"total": 0.001},
                },
            )
        ]
    )
    session.conversations["default"]._agent = agent
    session.conversations["default"].sticky.update(
        provider="local", base_url="http://127.0.0.1:9/v1/chat/completions"
    )
    with capture_output() as captured:
        shell.run_cell_magic("agent", "--quiet", "2+2?")
        shell.run_line_magic("agent", "history")
        shell.run_line_magic("agent", "usage")
        shell.run_line_magic("agent", f"export {tmp_path / 't.json'}")
        shell.run_line_magic("agent", f"export {tmp_path / 't.md'}")
    text = outputs_text(captured)
    assert "2+2?" in text and "The answer is 4." in text
    assert "12" in text and "0.001000" in text
    data = json.loads((tmp_path / "t.json").read_text())
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert "## assistant" in (tmp_path / "t.md").read_text()
    with capture_output():
        shell.run_line_magic("agent", "reset")
        assert agent.state.messages == []
        shell.run_line_magic("agent", f"load {tmp_path / 't.json'}")
        assert [m.role for m in agent.state.messages] == ["user", "assistant"]
        shell.run_line_magic("agent", f"load {tmp_path / 't.md'} --name copy")
    copy = session.conversations["copy"].agent
    assert [m.role for m in copy.state.messages] == ["user", "assistant"]
    assert copy.state.messages[1].content[0].text == "The answer is 4."


def test_doctor_and_tools_subcommands_show_no_secret(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", SECRET)

    def add(a: float, b: float = 1.0) -> float:
        """Add two numbers."""
        return a + b

    shell.user_ns["add"] = add
    session = session_of(shell)
    session.conversations["default"].tool_names = ["add"]
    session.conversations["default"].sticky["base_url"] = "http://127.0.0.1:9/v1/chat/completions"
    with capture_output() as captured:
        shell.run_line_magic("agent", "doctor")
        shell.run_line_magic("agent", "tools")
    text = outputs_text(captured) + "".join(o.data.get("text/html", "") for o in captured.outputs)
    assert "tinyagent._alchemy" in text and "render mode" in text and "no answer" in text
    assert "OPENROUTER_API_KEY (set)" in text and SECRET not in text
    assert "add" in text and "a: number, b?: number" in text and "Add two numbers." in text


def test_doctor_says_a_missing_key_is_not_needed_for_a_local_server(shell: InteractiveShell) -> None:
    # (a hosted URL would make doctor probe the real provider: not from a test)
    session_of(shell).conversations["default"].sticky["base_url"] = "http://127.0.0.1:9/v1"
    with capture_output() as captured:
        shell.run_line_magic("agent", "doctor")
    text = outputs_text(captured) + "".join(o.data.get("text/html", "") for o in captured.outputs)
    assert "OPENROUTER_API_KEY (not set; not needed for a local base URL)" in text


def test_agent_help_prints_every_option_and_subcommand_as_cell_output(shell):
    # `%%agent?` goes to IPython's pager, which an executed notebook never shows.
    with capture_output() as captured:
        shell.run_line_magic("agent", "help")
    text = captured.stdout
    assert text.startswith("usage: %%agent [options]")
    for action in AgentMagics.agent.parser._actions:
        for flag in action.option_strings:
            assert flag in text, flag
    from tinyagent.notebook._subcommands import _COMMANDS

    for name in _COMMANDS:
        assert f"%agent {name}" in text, name
    assert "``" not in text and "::" not in text
