"""The live view of a tutorial-style notebook, in fresh kernels, in JupyterLab and Notebook 7.

Every tutorial starts the same way: its first cell starts the model server inside the kernel and
the user clicks Run All. That is when the first ``%%agent`` cell's live view used to stay blank:
the widget's view asks the kernel for every part once ("sync") when its store is made, the reply
re-sent the text block's container after the growing text had been put into it, and the view
rewrote the container's HTML, which detached the text; every later update landed off the page.

Each trial here is a fresh page (so the widget's ESM loads anew) on a fresh kernel (a new
notebook, hence a new session), runs two ``%%agent`` cells with Run All, and samples the cells'
outputs in the page every 20 ms while they stream. The live view must show streamed text, only
ever a growing prefix of the answer, with the open paragraph growing word by word after finished
ones, and hand over to a static rendering of the whole answer.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from jupyter_pages import (
    STATIC_OUTPUT,
    USE_SERVER,
    JupyterServer,
    open_in_lab,
    open_in_notebook7,
    start_run_all,
    start_sampler,
    stop_sampler,
    wait_for_run_all,
    write_notebook,
)

TRIALS = 4  # fresh kernels per front end; the bug showed in about every second one


PARAGRAPHS, WORDS = 6, 8  # one word per delta, every 40 ms: about 2 s of streaming per cell


def answer(word: str) -> str:
    """Paragraphs of numbered words: finished pieces and a growing tail, both live."""
    return "\n\n".join(
        " ".join(f"{word}{p * WORDS + i}" for i in range(WORDS)) for p in range(PARAGRAPHS)
    )


# (cell index, the word its answer numbers); cell 0 starts the server, as in every tutorial
AGENT_CELLS = [(1, "alpha"), (2, "beta")]


def tutorial_like_notebook(server: JupyterServer, name: str) -> str:
    return write_notebook(server, name, [
        "%load_ext tinyagent.notebook\n"
        "from tinyagent.testing import ModelServer, Reply, ScriptedBrain\n"
        "server = ModelServer(ScriptedBrain([\n"
        f"    Reply(text={answer('alpha')!r}, chunking='words', delay=0.04),\n"
        f"    Reply(text={answer('beta')!r}, chunking='words', delay=0.04),\n"
        "])).start()\n"
        f"{USE_SERVER}",
        "%%agent\nFirst answer, please.",
        "%%agent\nAnd a second one.",
    ])  # fmt: skip


def check_cell(samples: list[tuple[int, int, str, str, int]], cell: int, word: str) -> None:
    expected = re.findall(rf"{word}\d+", answer(word))
    mine = [s for s in samples if s[1] == cell]
    timeline = "\n".join(
        f"{t:6d} ms {kind:6s} parts={parts} {' '.join(text.split())[:70]!r}"
        for t, _cell, kind, text, parts in mine
    )
    live = [re.findall(rf"{word}\d+", text) for _t, _c, kind, text, _p in mine if kind == "live"]
    shown = [words for words in live if words]
    assert shown, f"cell {cell}: the live view never showed streamed text; samples:\n{timeline}"
    first = live.index(shown[0])
    for words in live[first:]:
        # once text is on the page it stays, in order, and only grows
        assert words == expected[: len(words)], (
            f"cell {cell}: live text lost or out of order:\n{timeline}"
        )
    counts = [len(words) for words in live[first:]]
    assert counts == sorted(counts), f"cell {cell}: live text shrank:\n{timeline}"
    # The open paragraph streams in word by word, also once earlier ones are finished pieces: a
    # view that lost its growing tail shows whole paragraphs only, whether or not a sample caught
    # the moment it lost it.
    assert any(n > WORDS and n % WORDS for n in counts), (
        f"cell {cell}: the growing paragraph never showed after the first one:\n{timeline}"
    )
    # the run ends with the static rendering of the whole answer, and the live view is gone
    assert mine[-1][2] == "static", f"cell {cell}: no static rendering at the end:\n{timeline}"
    assert re.findall(rf"{word}\d+", mine[-1][3]) == expected, timeline


@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.parametrize("front_end", ["lab", "notebook7"])
def test_live_view_streams_in_a_fresh_kernel_with_run_all(
    page: Any, jupyter_server: JupyterServer, front_end: str, trial: int
) -> None:
    notebook = tutorial_like_notebook(jupyter_server, f"fresh_{front_end}_{trial}.ipynb")
    try:
        if front_end == "lab":
            open_in_lab(page, jupyter_server, notebook)
        else:
            open_in_notebook7(page, jupyter_server, notebook)
        start_sampler(page)
        start_run_all(page)
        wait_for_run_all(page, jupyter_server, notebook)
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        for cell, word in AGENT_CELLS:  # the execute reply can overtake the output's last update
            static = cells.nth(cell).locator(f"{STATIC_OUTPUT} .tinyagent-run")
            static.get_by_text(f"{word}{PARAGRAPHS * WORDS - 1}").wait_for(timeout=10_000)
        samples = stop_sampler(page)
        for cell, word in AGENT_CELLS:
            check_cell(samples, cell, word)
    finally:
        # one kernel per trial: shut it down so the next trial's fresh kernel has the CPU
        session = jupyter_server.session(notebook)
        if session is not None:
            jupyter_server.api("DELETE", f"/api/sessions/{session['id']}")
