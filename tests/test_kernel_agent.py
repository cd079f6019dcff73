"""The agent inside a real ipykernel: kernel tools, ``run_python`` (output, figures, approval,
interrupt) and ``%agent fix``, against scripted loopback model servers in this process, so each
test reads exactly what the model was sent."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

from support.real_kernel import (  # noqa: E402
    click,
    collect,
    plain,
    run_cell,
    running_kernel,
    widget_ops,
)

from tinyagent.notebook._approval import HEADLESS_REFUSAL, SKIPPED  # noqa: E402
from tinyagent.testing import ModelServer, Reply, ScriptedBrain, ToolCallSpec  # noqa: E402


@pytest.fixture(scope="module")
def kernel() -> Iterator[Any]:
    with running_kernel("final") as (manager, client):
        reply, outputs = run_cell(client, "%load_ext tinyagent.notebook")
        assert reply["status"] == "ok", plain(outputs)
        yield manager, client


def calls(*tool_calls: tuple[str, dict[str, Any]], answer: str = "Done.") -> ScriptedBrain:
    """One turn per tool call, then the answer."""
    turns = [Reply(tool_calls=[ToolCallSpec(name, args)]) for name, args in tool_calls]
    return ScriptedBrain([*turns, Reply(text=answer)])


def agent_cell(server: ModelServer, options: str, prompt: str = "Go") -> str:
    return f"%%agent {options} --new --provider local --base-url {server.url}\n{prompt}"


def tool_messages(server: ModelServer) -> list[Any]:
    """The content of each tool result the model received, in order."""
    body = server.requests[-1].body
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


def html_of(outputs: list[dict[str, Any]]) -> str:
    return "".join(m["content"].get("data", {}).get("text/html", "") for m in outputs)


def test_kernel_tools_describe_the_namespace_bounded_and_without_secrets(kernel: Any) -> None:
    _, client = kernel
    reply, outputs = run_cell(
        client,
        "import numpy as np, pandas as pd\n"
        "df = pd.DataFrame({'city': ['Oslo', None], 'temp': [3.5, 19.0]})\n"
        "big = pd.DataFrame({'a': np.arange(1_000_000), 'b': np.ones(1_000_000)})\n"
        "arr = np.array([1.0, 2.0, 6.0])\n"
        "cfg = {'alpha': 1, 'beta': [1, 2]}\n"
        "class Report:\n"
        "    def _repr_llm_(self):\n"
        "        return 'report: 3 sections'\n"
        "report = Report()\n"
        "API_TOKEN = 'tok-do-not-show-1234'",
    )
    assert reply["status"] == "ok", plain(outputs)
    names = ["df", "big", "arr", "cfg", "report", "dff", "API_TOKEN"]
    brain = calls(("list_variables", {}), *[("inspect_variable", {"name": n}) for n in names])
    with ModelServer(brain) as server:
        reply, outputs = run_cell(client, agent_cell(server, "--kernel"))
        results = tool_messages(server)
    assert reply["status"] == "ok", plain(outputs)
    listing, df, big, arr, cfg, report, unknown, secret = results
    assert "df: DataFrame shape=(2, 2)" in listing and "API_TOKEN: <hidden>" in listing
    assert "np:" not in listing and "Report: type" in listing
    assert "2 rows x 2 columns" in df and "1 null" in df and "describe:" in df
    assert "1000000 rows x 2 columns" in big and len(big) <= 4000
    assert "shape=(3,) dtype=float64" in arr and "min=1.0 max=6.0 mean=3" in arr
    assert "dict with 2 keys" in cfg and "'beta': [1, 2]" in cfg
    assert report == "report: report: 3 sections"
    assert "No variable named 'dff'" in unknown and "df" in unknown.split("Close matches:")[1]
    assert "looks like a secret" in secret
    assert "tok-do-not-show" not in json.dumps(results)


def test_run_python_output_error_and_figure_reach_the_model_and_the_cell(kernel: Any) -> None:
    _, client = kernel
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.title('squares')\nplt.show()"
    brain = calls(
        ("run_python", {"code": "print('hello')\nx = 6 * 7\nx"}),
        ("run_python", {"code": "1 / 0"}),
        ("run_python", {"code": plot}),
        answer="The plot shows squares.",
    )
    with ModelServer(brain) as server:
        reply, outputs = run_cell(client, agent_cell(server, "--kernel --yes"))
        printed, failed, plotted = tool_messages(server)
        body = server.requests[-1].body
    assert reply["status"] == "ok", plain(outputs)
    assert printed == "hello\nOut: 42"
    assert failed.startswith("Traceback") and failed.endswith("ZeroDivisionError: division by zero")
    assert plotted == "[1 image attached]"
    follow_up = body["messages"][-1]  # the image travels in the user message after the results
    assert follow_up["role"] == "user"
    assert follow_up["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    page = html_of(outputs)
    assert '<img src="data:image/png;base64,' in page, "the figure is in the saved cell"
    assert page.count("<img ") == 1, "shown once: in the card, not again by the inline backend"
    assert "The plot shows squares." in plain(outputs)
    reply, outputs = run_cell(client, "print(x)")
    assert plain(outputs).strip() == "42", "what the code defined is in the namespace"


def test_headless_run_python_refuses_instead_of_waiting(kernel: Any) -> None:
    _, client = kernel
    brain = calls(("run_python", {"code": "headless_ran = True"}))
    with ModelServer(brain) as server:
        reply, outputs = run_cell(client, agent_cell(server, "--kernel"), timeout=20)
        (refused,) = tool_messages(server)
    assert reply["status"] == "ok" and refused == HEADLESS_REFUSAL
    reply, outputs = run_cell(client, "print('headless_ran' in globals())")
    assert plain(outputs).strip() == "False"


def test_an_interrupt_stops_the_code_and_the_run_and_the_next_cell_works(
    kernel: Any, tmp_path: Path
) -> None:
    manager, client = kernel
    marker = tmp_path / "started"
    code = f"before = 'kept'\nopen({str(marker)!r}, 'w').close()\nimport time\ntime.sleep(30)\nafter = 1"
    brain = calls(("run_python", {"code": code}), answer="not reached")
    with ModelServer(brain) as server:
        msg_id = client.execute(agent_cell(server, "--kernel --yes"), allow_stdin=False)
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), "the code started"
        interrupted = time.monotonic()
        manager.interrupt_kernel()
        reply, outputs = collect(client, msg_id, timeout=10)
        took = time.monotonic() - interrupted
        sent = len(server.requests)
    assert took < 1.0, f"the run ended {took:.2f} s after the interrupt"
    assert reply["status"] == "ok" and sent == 1, "the run ended: the model was not asked again"
    text = plain(outputs)
    assert "KeyboardInterrupt" in text and "[stopped]" in text, text
    reply, outputs = run_cell(client, "print(before, 'after' in globals())")
    assert plain(outputs).split() == ["kept", "False"]
    with ModelServer(ScriptedBrain([Reply(text="still here")])) as server:
        reply, outputs = run_cell(client, agent_cell(server, "--kernel", "Are you there?"))
    assert reply["status"] == "ok" and "still here" in plain(outputs)


def test_agent_fix_sends_the_last_exception_with_its_cell_and_variables(kernel: Any) -> None:
    _, client = kernel
    reply, outputs = run_cell(client, "import sys\nsys.last_value = None")
    fixed = "Divide by a non-zero count.\n\n```python\ncount = 1\nmean = total / count\n```"
    with ModelServer(ScriptedBrain([Reply(text=fixed)])) as server:
        reply, outputs = run_cell(client, f"%agent fix --provider local --base-url {server.url}")
        assert "no exception to fix yet" in plain(outputs), "a clear message before any error"
        reply, outputs = run_cell(client, "total = 10\ncount = 0\nmean = total / count")
        assert reply["status"] == "error"
        reply, outputs = run_cell(client, f"%agent fix --provider local --base-url {server.url}")
        (request,) = server.requests
    assert reply["status"] == "ok", (reply.get("ename"), reply.get("evalue"), plain(outputs))
    prompt = request.body["messages"][-1]["content"]
    prompt = prompt if isinstance(prompt, str) else prompt[0]["text"]
    assert "ZeroDivisionError: division by zero" in prompt
    # the cell as IPython names it, not the kernel's pid-named temp file
    assert re.search(r'File "Cell In\[\d+\]", line 3, in <module>', prompt), prompt
    assert "ipykernel_" not in prompt
    assert "```python\ntotal = 10\ncount = 0\nmean = total / count\n```" in prompt
    assert "total: int\n10" in prompt and "count: int\n0" in prompt
    assert "Divide by a non-zero count." in plain(outputs)


def test_run_skip_and_always_buttons_answer_run_python_mid_run() -> None:
    with running_kernel("live") as (_, client):
        reply, outputs = run_cell(client, "%load_ext tinyagent.notebook")
        brain = calls(*[("run_python", {"code": f"answered = {n}"}) for n in (1, 2, 3)])
        with ModelServer(brain) as server:
            msg_id = client.execute(agent_cell(server, "--kernel"), allow_stdin=False)
            comm_id = ""
            for choice in ("skip", "always"):
                comm_id, ops = widget_ops(
                    client, lambda ops: any("data-choice" in o[2] for o in ops), comm_id=comm_id
                )
                question = next(o[2] for o in ops if "data-choice" in o[2])
                assert "Always in this conversation" in question and ">Run<" in question
                key = question.split('data-confirm="', 1)[1].split('"', 1)[0]
                click(client, comm_id, event="confirm", id=key, choice=choice)
            reply, outputs = collect(client, msg_id, timeout=20)
            results = tool_messages(server)
        assert reply["status"] == "ok"
        quiet = "(the code ran; it printed nothing and has no value)"
        assert results == [SKIPPED, quiet, quiet], "skipped, then run, then run without asking"
        reply, outputs = run_cell(client, "print(answered)")
        assert plain(outputs).strip() == "3"
