"""``%%agent --kernel`` and ``@name`` mentions: the model sees the kernel's variables."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from support.notebook_fakes import Step, scripted_agent
from support.notebook_shell import fresh_shell


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> InteractiveShell:
    sh = fresh_shell(monkeypatch, tmp_path)
    for name in ("df", "city", "OPENAI_API_KEY"):
        sh.user_ns.pop(name, None)
    return sh


def use_script(shell: InteractiveShell, steps: list[Step]) -> Any:
    agent, stream = scripted_agent(steps)
    shell.user_ns["bot"] = agent
    return agent, stream


def test_kernel_tools_are_offered_for_that_cell_only_and_read_the_namespace(shell):
    shell.user_ns["df"] = pd.DataFrame({"a": [1, 2, 3]})
    agent, stream = use_script(
        shell,
        [
            Step(tool_calls=[("c1", "inspect_variable", {"name": "df"})]),
            Step(text="df has 3 rows."),
            Step(text="no tools now"),
        ],
    )
    with capture_output():
        shell.run_cell_magic("agent", "--agent bot --kernel", "How many rows has df?")
        shell.run_cell_magic("agent", "--agent bot", "And now?")
    first, _, third = stream.calls
    assert [t.name for t in first.tools] == ["list_variables", "inspect_variable", "run_python"]
    assert not third.tools and agent.state.tools == []
    result = next(m for m in agent.state.messages if m.role == "tool_result")
    assert not result.is_error and "3 rows x 1 columns" in result.content[0].text


def test_a_mention_attaches_the_summary_as_its_own_block(shell):
    shell.user_ns["df"] = pd.DataFrame({"temp": [3.5, 19.0]})
    shell.user_ns["city"] = "Oslo"
    _, stream = use_script(shell, [Step(text="ok")])
    with capture_output() as captured:
        shell.run_cell_magic("agent", "--agent bot", "Is @df warm in {city}? Mail me: a@b.com")
    blocks = stream.calls[0].messages[0].content
    assert blocks[0].text == "Is @df warm in Oslo? Mail me: a@b.com"  # {city} is still str()
    assert len(blocks) == 2  # the e-mail address is no mention
    assert blocks[1].text.startswith("Variable @df (from inspect_variable):\ndf: DataFrame")
    assert "temp: float64, 0 null" in blocks[1].text
    assert captured.stdout == ""


def test_an_unknown_or_secret_mention_stays_text_with_a_notice(shell):
    shell.user_ns["OPENAI_API_KEY"] = "sk-not-for-the-model-0123"
    _, stream = use_script(shell, [Step(text="ok")])
    with capture_output() as captured:
        shell.run_cell_magic("agent", "--agent bot", "Compare @nope with @OPENAI_API_KEY")
    (block,) = stream.calls[0].messages[0].content
    assert block.text == "Compare @nope with @OPENAI_API_KEY"
    notices = captured.stdout.strip().splitlines()
    assert len(notices) == 2
    assert notices[0].startswith("@nope left as text: No variable named 'nope'")
    assert "looks like a secret" in notices[1] and "sk-not" not in captured.stdout


def test_no_interpolate_leaves_mentions_alone(shell):
    shell.user_ns["df"] = pd.DataFrame({"a": [1]})
    _, stream = use_script(shell, [Step(text="ok")])
    with capture_output():
        shell.run_cell_magic("agent", "--agent bot --no-interpolate", "Look at @df")
    (block,) = stream.calls[0].messages[0].content
    assert block.text == "Look at @df"


def test_code_asks_for_code_only_and_puts_the_block_into_the_next_cell(shell, monkeypatch):
    agent, stream = use_script(
        shell, [Step(text="```python\ndf = df.dropna()\n```"), Step(text="plain")]
    )
    agent.set_system_prompt("You are terse.")
    seen: list[str] = []
    monkeypatch.setattr(shell, "set_next_input", lambda text, replace=False: seen.append(text))
    with capture_output():
        shell.run_cell_magic("agent", "--agent bot --code", "drop the empty rows of df")
        shell.run_cell_magic("agent", "--agent bot", "and now?")
    first, second = stream.calls
    assert first.system_prompt.startswith("You are terse.\n\nAnswer with code only")
    assert second.system_prompt == "You are terse.", "the instruction holds for that cell only"
    assert seen == ["df = df.dropna()"]


def test_yes_runs_code_without_asking_and_the_card_shows_code_and_figure(shell):
    pytest.importorskip("matplotlib")
    code = "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])"
    _, stream = use_script(
        shell, [Step(tool_calls=[("c1", "run_python", {"code": code})]), Step(text="a line")]
    )
    with capture_output() as captured:
        shell.run_cell_magic("agent", "--agent bot --kernel --yes", "plot a line")
    page = captured.outputs[-1].data["text/html"]
    assert '<div class="ta-code"><button class="ta-copy"' in page and "plt.plot([1, 2])" in page
    assert '<img src="data:image/png;base64,' in page
    result = stream.calls[1].messages[-1]
    assert result.role == "tool_result" and [b.type for b in result.content] == ["text", "image"]


def test_without_yes_a_headless_cell_refuses_to_run_code(shell, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # nobody can answer input()
    _, stream = use_script(
        shell,
        [Step(tool_calls=[("c1", "run_python", {"code": "ran_it = 1"})]), Step(text="ok")],
    )
    with capture_output() as captured:
        shell.run_cell_magic("agent", "--agent bot --kernel", "set ran_it")
    result = stream.calls[1].messages[-1]
    assert result.is_error and "nobody can answer here" in result.content[0].text
    assert "ran_it" not in shell.user_ns
    assert "error" in captured.outputs[-1].data["text/plain"]


def test_agent_config_bounds_the_kernel_tools(shell):
    from tinyagent.notebook._kernel_tools import TRUNCATED

    shell.user_ns["df"] = pd.DataFrame({"a": range(1000), "b": range(1000)})
    _, stream = use_script(
        shell, [Step(tool_calls=[("c1", "inspect_variable", {"name": "df"})]), Step(text="ok")]
    )
    with capture_output():
        shell.run_line_magic("agent", "config tool_output_limit=300 image_max_side=256")
        try:
            shell.run_cell_magic("agent", "--agent bot --kernel", "look at df")
        finally:
            shell.run_line_magic("agent", "config tool_output_limit= image_max_side=")
    text = stream.calls[1].messages[-1].content[0].text
    assert len(text) <= 300 and text.endswith(TRUNCATED)
    with pytest.raises(Exception, match="image_max_side must be positive"):
        shell.run_line_magic("agent", "config image_max_side=0")
