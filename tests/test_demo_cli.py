"""``python -m tinyagent.demo``, as a newcomer runs it: a real subprocess, the real stack."""

from __future__ import annotations

import subprocess
import sys


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinyagent.demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_names_the_command_and_has_no_raw_markup():
    done = demo("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m tinyagent.demo ")
    assert "``" not in done.stdout and "demo.py" not in done.stdout


def test_a_missing_notebook_is_one_line_on_stderr():
    done = demo("--notebook", "no/such/tutorial.ipynb")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "python -m tinyagent.demo: error: no notebook at no/such/tutorial.ipynb"
    ]
    assert "Traceback" not in done.stderr


def test_the_transcript_has_no_stray_blank_lines():
    done = demo("What is the capital of France?", "Please use sum to add 2 and 40.")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    tool_prompt = lines.index(">>> Please use sum to add 2 and 40.")
    assert lines[tool_prompt + 1 : tool_prompt + 4] == [
        "[tool call] sum({'a': 2, 'b': 40})",
        "[tool result] sum -> 42",
        'The sum tool returned "42".',
    ]
    assert "\n\n\n" not in done.stdout
