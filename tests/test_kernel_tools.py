"""``kernel_tools()``: the model looks at the kernel's variables, bounded, with secrets kept out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from support.agent_support import ScriptedReply, ScriptedToolCall, run, scripted_agent

from tinyagent import ToolError
from tinyagent.notebook import kernel_tools
from tinyagent.notebook._kernel_tools import DEFAULT_LIMIT, TRUNCATED, inspect_variable


class Report:
    """An object that says how it looks to a model."""

    def _repr_llm_(self) -> str:
        return "quarterly report: 3 sections, 12 figures"


@pytest.fixture
def shell() -> InteractiveShell:
    sh = InteractiveShell.instance()
    for name in ("df", "arr", "cfg", "items", "clean", "report", "OPENAI_API_KEY", "db_password"):
        sh.user_ns.pop(name, None)
    return sh


def tools_for(shell: InteractiveShell):
    listing, inspecting, running = kernel_tools(shell)
    assert (listing.name, inspecting.name, running.name) == (
        "list_variables",
        "inspect_variable",
        "run_python",
    )
    return listing, inspecting


def call(tool, **args) -> str:
    result = run(tool.execute("c1", args, None, lambda _: None))
    return "".join(block.text for block in result.content)


def test_list_variables_shows_the_users_variables_only(shell):
    shell.run_cell("import json\ndf = __import__('pandas').DataFrame({'a': [1, 2]})\nx = 3\n_y = 4")
    shell.user_ns["db_password"] = "hunter2-hunter2"
    text = call(tools_for(shell)[0])
    lines = dict(line.split(": ", 1) for line in text.splitlines())
    assert lines["df"] == "DataFrame shape=(2, 1)"
    assert lines["x"].startswith("int")
    assert lines["db_password"] == "<hidden>" and "hunter2" not in text
    assert "json" not in lines and "_y" not in lines and "In" not in lines and "exit" not in lines


def test_a_dataframe_summary_has_shape_dtypes_nulls_head_and_describe(shell):
    shell.user_ns["df"] = pd.DataFrame(
        {"city": ["Oslo", "Lima", None], "temp": [3.5, 19.0, 11.2], "n": [1, 2, 3]}
    )
    text = call(tools_for(shell)[1], name="df")
    assert "3 rows x 3 columns" in text
    assert "city: object, 1 null" in text or "city: str, 1 null" in text
    assert "temp: float64, 0 null" in text
    assert "Oslo" in text and "describe:" in text and "mean" in text


def test_a_million_row_frame_stays_within_the_bound(shell):
    shell.user_ns["df"] = pd.DataFrame({"x": np.arange(1_000_000), "label": ["row"] * 1_000_000})
    text = call(tools_for(shell)[1], name="df")
    assert len(text) <= DEFAULT_LIMIT
    assert "1000000 rows x 2 columns" in text


def test_the_bound_is_marked_when_it_cuts(shell):
    shell.user_ns["cfg"] = {f"key{i}": "v" * 50 for i in range(100)}
    (_, inspecting, _) = kernel_tools(shell, limit=120)
    text = call(inspecting, name="cfg")
    assert len(text) <= 120 and text.endswith(TRUNCATED)


def test_arrays_mappings_sequences_callables_and_the_repr_llm_hook(shell):
    ns = shell.user_ns
    ns["arr"] = np.array([[1.0, 2.0], [3.0, 4.0]])
    ns["cfg"] = {"lr": 0.1, "epochs": 3}
    ns["items"] = list(range(1000))

    def clean(text: str, lower: bool = True) -> str:
        """Strip and lowercase a string."""
        return text.strip()

    ns["clean"] = clean
    ns["report"] = Report()
    inspecting = tools_for(shell)[1]
    array = call(inspecting, name="arr")
    assert "shape=(2, 2) dtype=float64" in array and "min=1.0 max=4.0 mean=2.5" in array
    assert "dict with 2 keys" in call(inspecting, name="cfg")
    items = call(inspecting, name="items")
    assert "list of length 1000" in items and "..." in items and len(items) < 200
    assert "(text: str, lower: bool = True) -> str" in call(inspecting, name="clean")
    assert "Strip and lowercase" in call(inspecting, name="clean")
    assert call(inspecting, name="report") == "report: quarterly report: 3 sections, 12 figures"


def test_unknown_names_list_close_matches_and_secrets_are_refused():
    ns = {"sales_2024": 1, "sales_2023": 2, "OPENAI_API_KEY": "sk-abcdefghijkl"}
    with pytest.raises(ToolError, match="Close matches: sales_2024, sales_2023"):
        inspect_variable(ns, "sales_2025")
    with pytest.raises(ToolError, match="looks like a secret"):
        inspect_variable(ns, "OPENAI_API_KEY")


def test_known_keys_are_scrubbed_from_every_output(shell, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-0123456789abcdef")
    shell.user_ns["cfg"] = {"auth": "Bearer sk-or-v1-0123456789abcdef"}
    text = call(tools_for(shell)[1], name="cfg")
    assert "sk-or-v1" not in text and "***" in text


def test_the_model_reads_a_variable_through_the_agent_loop(shell, caplog):
    shell.user_ns["df"] = pd.DataFrame({"a": [1, 2, 3]})
    script = [
        ScriptedReply(tool_calls=[ScriptedToolCall("inspect_variable", {"name": "dff"})]),
        ScriptedReply(tool_calls=[ScriptedToolCall("inspect_variable", {"name": "df"})]),
        "df has 3 rows.",
    ]
    agent, stream_fn, _ = scripted_agent(script, tools=kernel_tools(shell))
    with caplog.at_level("DEBUG", logger="tinyagent.tools"):
        assert run(agent.prompt_text("How many rows has df?")) == "df has 3 rows."
    first, second = (m for m in agent.state.messages if m.role == "tool_result")
    assert first.is_error and "Close matches: df" in first.content[0].text
    assert not second.is_error and "3 rows x 1 columns" in second.content[0].text
    # an expected tool failure is not a broken tool: no warning with a traceback
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_kernel_tools_needs_a_shell():
    from IPython.core.interactiveshell import InteractiveShell as Shell

    if Shell.initialized():  # another test made the global shell: then it is found
        assert [t.name for t in kernel_tools()] == ["list_variables", "inspect_variable", "run_python"]
    else:
        with pytest.raises(RuntimeError, match="running IPython shell"):
            kernel_tools()
