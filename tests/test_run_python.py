"""``run_python``: the model's code runs in the user's namespace like a cell, asks first, and
returns output, value, error and images, bounded and with keys scrubbed (an in-process IPython
shell; tests/test_kernel_agent.py runs the same through a real kernel)."""

from __future__ import annotations

import asyncio
import base64
import io
import os

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tinyagent import ToolError
from tinyagent.notebook import _approval
from tinyagent.notebook._kernel_tools import TRUNCATED, kernel_tools
from tinyagent.notebook._run_python import run_code

os.environ.setdefault("MPLBACKEND", "Agg")  # a shell without the inline backend, as in a script
plt = pytest.importorskip("matplotlib.pyplot")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def shell() -> InteractiveShell:
    sh = InteractiveShell.instance()
    for name in ("x", "made", "secret_value"):
        sh.user_ns.pop(name, None)
    plt.close("all")
    return sh


def run_tool(shell, code: str, *, approve: bool = False, limit: int = 4000, **kwargs):
    tool = {t.name: t for t in kernel_tools(shell, approve=approve, limit=limit, **kwargs)}
    return asyncio.run(tool["run_python"].execute("c1", {"code": code}, asyncio.Event(), None))


def text_of(result) -> str:
    return "".join(b.text for b in result.content if b.type == "text")


def test_output_value_and_namespace_are_those_of_a_cell(shell):
    result = run_tool(shell, "import sys\nprint('one')\nprint('two', file=sys.stderr)\nx = 6 * 7\nx")
    assert text_of(result) == "one\ntwo\nOut: 42"
    assert shell.user_ns["x"] == 42, "the variables the code defines stay"
    outcome = asyncio.run(run_code(shell, "%time made = 1\nmade + 1"))
    assert outcome.result == "2" and "Wall time" in outcome.output, "magics work as in a cell"
    outcome = asyncio.run(run_code(shell, "import asyncio\nawait asyncio.sleep(0)\n'awaited'"))
    assert outcome.result == "'awaited'", "top-level await works as in a cell"


def test_an_error_is_an_error_result_with_a_traceback_of_the_code_only(shell):
    code = "print('before')\ndef f():\n    return 1 / 0\nf()"
    with pytest.raises(ToolError) as info:
        run_tool(shell, code)
    text = str(info.value)
    assert text.startswith("before\nTraceback (most recent call last):")
    assert "return 1 / 0" in text and text.endswith("ZeroDivisionError: division by zero")
    assert "tinyagent" not in text and "interactiveshell" not in text, "none of our frames"
    with pytest.raises(ToolError, match="SyntaxError"):
        run_tool(shell, "x = (")


def test_a_figure_comes_back_as_a_png_and_is_closed(shell):
    result = run_tool(shell, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
    images = [b for b in result.content if b.type == "image"]
    assert text_of(result).endswith("[1 image attached]") and len(images) == 1
    assert images[0].mime_type == "image/png" and images[0].url.startswith("data:image/png;base64,")
    png = base64.b64decode(images[0].url.split(",", 1)[1])
    assert png.startswith(b"\x89PNG")
    assert plt.get_fignums() == [], "shown once, in the card; not again at the cell's end"


def test_displayed_images_are_kept_and_big_images_are_downscaled(shell):
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 1500), "navy").save(buffer, format="PNG")
    shell.user_ns["png_bytes"] = buffer.getvalue()
    result = run_tool(
        shell, "from IPython.display import Image, display\ndisplay(Image(png_bytes))", image_max_side=600
    )
    (image,) = [b for b in result.content if b.type == "image"]
    data = base64.b64decode(image.url.split(",", 1)[1])
    assert Image.open(io.BytesIO(data)).size == (600, 300)


def test_output_is_bounded_and_keys_are_scrubbed(shell, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    result = run_tool(shell, "import os\nprint(os.environ['OPENAI_API_KEY'])\nprint('y' * 100000)")
    text = text_of(result)
    assert "sk-test-0123456789abcdef" not in text and text.startswith("***")
    assert len(text) <= 4000 and text.endswith(TRUNCATED)


def test_headless_refuses_and_the_code_does_not_run(shell, monkeypatch):
    # no approver, and stdin is at its end (a script run with </dev/null): nobody can answer
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(ToolError) as info:
        run_tool(shell, "made = 1", approve=True)
    assert str(info.value) == _approval.HEADLESS_REFUSAL and "made" not in shell.user_ns


def test_skip_run_and_always_are_the_persons_answers(shell):
    answers = iter(["skip", "always"])
    asked: list[str] = []

    async def approver(call_id: str, name: str, detail: str) -> str:
        asked.append(detail)
        return next(answers)

    tool = {t.name: t for t in kernel_tools(shell)}["run_python"]

    async def three_calls() -> list[object]:
        token = _approval.APPROVER.set(approver)
        outcomes: list[object] = []
        try:
            for code in ("made = 1", "made = 2", "made = 3"):
                try:
                    outcomes.append(await tool.execute("c", {"code": code}, asyncio.Event(), None))
                except ToolError as exc:
                    outcomes.append(str(exc))
        finally:
            _approval.APPROVER.reset(token)
        return outcomes

    outcomes = asyncio.run(three_calls())
    assert outcomes[0] == _approval.SKIPPED
    assert asked == ["made = 1", "made = 2"], "after Always it no longer asks"
    assert shell.user_ns["made"] == 3


def test_output_reaches_the_card_while_the_code_runs(shell):
    updates: list[str] = []
    tool = {t.name: t for t in kernel_tools(shell, approve=False)}["run_python"]
    code = "import time\nfor i in range(3):\n    print('line', i)\n    time.sleep(0.15)"
    result = asyncio.run(
        tool.execute("c1", {"code": code}, asyncio.Event(), lambda r: updates.append(text_of(r)))
    )
    assert text_of(result) == "line 0\nline 1\nline 2"
    final = text_of(result)
    assert len(updates) >= 2, "shown while the code ran, not only at its end"
    assert all(final.startswith(update) for update in updates), "each a growing prefix"
