"""``%agent fix``: the kernel's last exception as a prompt (docs/notebook.md#agent-fix).

The prompt holds what a person would paste into a chat: the exception, its traceback trimmed to
the notebook's own frames, the source of the cell that failed, and the summaries (as
``inspect_variable`` gives them, bounded, secrets left out) of the variables its failing line
names. IPython keeps the last exception in ``sys.last_value`` when it shows a traceback.
"""

from __future__ import annotations

import keyword
import linecache
import re
import sys
import traceback
from typing import Any

from tinyagent._tool_functions import ToolError

from ._kernel_tools import bounded, inspect_variable, user_variables

#: characters of each variable summary, and how many variables at most
_SUMMARY_LIMIT = 800
_MAX_VARIABLES = 5
_FRAMES = 8
_PROMPT_LIMIT = 12000
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")

NO_EXCEPTION = (
    "%agent fix: there is no exception to fix yet. Run the cell that fails, then %agent fix."
)
INSTRUCTION = (
    "A cell in my Jupyter notebook raised the exception below. Explain in a few sentences what "
    "went wrong, then give the corrected cell as one Python code block."
)
TRY_IT = "You may test your fix with the run_python tool before you answer."


def last_exception() -> BaseException | None:
    value = getattr(sys, "last_value", None)
    return value if isinstance(value, BaseException) else None


def _cell_names(shell: Any) -> dict[str, Any]:
    """IPython's map from the file name it gave a cell's code to that cell's execution count."""
    names = getattr(getattr(shell, "compile", None), "_filename_map", None)
    return names if isinstance(names, dict) else {}


def _is_cell(shell: Any, filename: str) -> bool:
    """A file name IPython gave a cell's code (not a library's file)."""
    return filename in _cell_names(shell) or filename.startswith("<ipython-input-")


def _named_as_cells(shell: Any, frames: traceback.StackSummary) -> traceback.StackSummary:
    """Cell frames named ``Cell In[N]`` as IPython shows them, not by the kernel's temp file.

    The temp file's name holds the kernel's pid: it tells the model nothing and would make the
    same failure give a different prompt in every kernel.
    """
    names = _cell_names(shell)
    renamed = []
    for frame in frames:
        count = names.get(frame.filename)
        if count is not None:
            frame = traceback.FrameSummary(
                f"Cell In[{count}]", frame.lineno, frame.name, line=frame.line
            )
        renamed.append(frame)
    return traceback.StackSummary.from_list(renamed)


def fix_prompt(shell: Any, exc: BaseException, *, kernel: bool = False) -> str:
    """The prompt for ``exc``; frames before the first cell frame (IPython's own) are left out."""
    frames = traceback.extract_tb(exc.__traceback__)
    first = next((i for i, f in enumerate(frames) if _is_cell(shell, f.filename)), None)
    if first is not None:
        frames = traceback.StackSummary.from_list(frames[first:])
    shown = _named_as_cells(shell, traceback.StackSummary.from_list(frames[-_FRAMES:]))
    text = "".join(["Traceback (most recent call last):\n", *shown.format()]) if shown else ""
    text += "".join(traceback.format_exception_only(type(exc), exc))
    parts = [INSTRUCTION + (" " + TRY_IT if kernel else ""), "Traceback:\n" + text.rstrip()]
    if first is not None:
        cell = frames[0]
        source = "".join(linecache.getlines(cell.filename)).rstrip()
        if source:
            parts.append(f"The cell that failed:\n```python\n{source}\n```")
        # the innermost line written in the notebook (not one inside a library)
        failing = [f for f in frames if _is_cell(shell, f.filename)][-1]
        summaries = _variables_on(shell, failing.line or "")
        if summaries:
            parts.append("Variables on the failing line:\n" + "\n\n".join(summaries))
    return bounded("\n\n".join(parts), _PROMPT_LIMIT)


def _variables_on(shell: Any, line: str) -> list[str]:
    namespace = shell.user_ns
    known = dict(user_variables(namespace, getattr(shell, "user_ns_hidden", None)))
    summaries: list[str] = []
    seen: set[str] = set()
    for name in _IDENTIFIER.findall(line):
        if name in seen or keyword.iskeyword(name) or name not in known:
            continue
        seen.add(name)
        try:
            summaries.append(inspect_variable(namespace, name, _SUMMARY_LIMIT))
        except ToolError:  # a secret name: named, never shown
            continue
        if len(summaries) == _MAX_VARIABLES:
            break
    return summaries
