"""Asking the person before the model's code runs (``run_python``).

The tool owns the rule (ask, unless approval is off or "always" was chosen); whoever shows the run
owns the question. A ``%%agent`` cell or a ``ChatPanel`` sets :data:`APPROVER` for the run, and
its renderer asks with buttons (Run / Skip / Always in this conversation). With no approver set
(``kernel_tools()`` on a plain ``Agent``) the question goes to stdin; where nobody can answer (no
buttons, no stdin: nbclient, nbval, papermill) the answer is :data:`NO_ONE_TO_ASK` and the tool
refuses with :data:`HEADLESS_REFUSAL` instead of waiting for ever.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable

RUN = "run"
SKIP = "skip"
ALWAYS = "always"
NO_ONE_TO_ASK = "headless"

#: ``approver(tool_call_id, tool_name, detail) -> RUN | SKIP | ALWAYS | NO_ONE_TO_ASK``
Approver = Callable[[str, str, str], Awaitable[str]]
APPROVER: contextvars.ContextVar[Approver | None] = contextvars.ContextVar(
    "tinyagent_approver", default=None
)

SKIPPED = "The user chose Skip: the code was not run. Ask them, or try another way."
HEADLESS_REFUSAL = (
    "run_python asks before it runs code, and nobody can answer here (no front end with buttons "
    "and no stdin, as in nbclient, nbval or papermill), so the code was not run. To run code "
    "without asking use %%agent --yes, ChatPanel(kernel='auto') or kernel_tools(approve=False)."
)


async def ask_on_stdin(tool_call_id: str, tool_name: str, detail: str) -> str:
    """The question as a terminal (or a kernel with stdin) asks it."""
    prompt = f"{tool_name} wants to run:\n{detail}\nRun it? [y]es / [n]o / [a]lways: "
    try:
        answer = input(prompt).strip().lower()
    except Exception:  # noqa: BLE001 - EOFError, StdinNotImplementedError under nbclient, ...
        return NO_ONE_TO_ASK
    if answer in ("a", "always"):
        return ALWAYS
    return RUN if answer in ("y", "yes") else SKIP


async def ask(tool_call_id: str, tool_name: str, detail: str) -> str:
    approver = APPROVER.get() or ask_on_stdin
    return await approver(tool_call_id, tool_name, detail)
