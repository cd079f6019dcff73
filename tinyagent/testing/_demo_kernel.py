"""The demo model's kernel-tool rules (``run_python``, ``list_variables``, ``inspect_variable``):
the rules themselves are documented in :mod:`tinyagent.testing._demo`'s docstring.

The brain is stateless, so every step is decided from the request's messages alone: the *prompt*
is the last user message that is not an image note (the ``Images returned by tool …`` message
that follows tool results with images), and the *turn* is every message after it: the tool
calls already made for that prompt and their results.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from typing import Any

from ._sse import message_text

__all__ = ["DEMO_PLOT", "KernelStep", "code_to_run", "image_counts", "is_image_note", "kernel_step",
           "run_python_sentence"]

IMAGE_NOTE = "Images returned by tool"
#: ``Images returned by tool run_python (call_1_1):`` → the call id
_NOTE_ID = re.compile(r"^Images returned by tool .*?\(([^()\s]+)\):")
#: a variable summary that ``@name`` attached to the prompt (not the user's own words)
_ATTACHED = re.compile(r"^Variable @\w+ \(from inspect_variable\):")
_FENCE = re.compile(r"```(.*?)```", re.DOTALL)
_INFO_STRING = re.compile(r"[\w+.#-]*[ \t]*")
_INLINE = re.compile(r"`[^`\n]*`")
_RUN_INLINE = re.compile(
    r"(?<!\w)run(?:\s+(?:this|the|code|python|snippet))*\s*:?\s*`([^`\n]+)`", re.IGNORECASE)
_PLOT_WORD = re.compile(r"(?<!\w)(?:plot|chart|figure)s?(?!\w)", re.IGNORECASE)
_EXPLICIT_NAME = re.compile(r"(?<![\w@.])@([A-Za-z_]\w*)|`([A-Za-z_]\w*)`")
_LISTED = re.compile(r"^([A-Za-z_]\w*): (.+)$", re.MULTILINE)
_ERROR_LINE = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception|Interrupt)\b(?::.*)?$")
_PLOTTABLE = ("DataFrame", "Series")
_MAX_INSPECT = 3
_MAX_LISTED = 20
_MAX_QUOTE = 500
_EMPTY_RESULT = "(no output)"

DEMO_PLOT = (
    "import matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(figsize=(4, 3))\n"
    'ax.plot([1, 2, 3, 4], [1, 4, 9, 16], marker="o")\n'
    'ax.set_title("demo plot")\n'
    "plt.show()"
)


@dataclasses.dataclass
class KernelStep:
    """What a kernel rule answers: tool calls ``(name, arguments)``, or a final text."""

    reasoning: str = ""
    calls: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    text: str = ""


@dataclasses.dataclass
class _Turn:
    prompt: str
    calls: list[tuple[str, str]]  # (call id, tool name), in order
    results: dict[str, Any]  # call id -> tool message
    fresh: bool  # nothing after the prompt yet
    answered: bool  # the request ends with tool results (and maybe image notes)

    def called(self, name: str) -> bool:
        return any(n == name for _, n in self.calls)

    def last_result(self, name: str) -> str | None:
        for call_id, called in reversed(self.calls):
            if called == name and call_id in self.results:
                return message_text(self.results[call_id].get("content"))
        return None


def is_image_note(message: Any) -> bool:
    return (isinstance(message, dict) and message.get("role") == "user"
            and message_text(message.get("content")).startswith(IMAGE_NOTE))


def _prompt_text(content: Any) -> str:
    """The user's own words: text parts, without the variable summaries ``@name`` attached."""
    if isinstance(content, list):
        content = [p for p in content if not (isinstance(p, dict) and p.get("type") == "text"
                                               and _ATTACHED.match(str(p.get("text", ""))))]
    return message_text(content)


def _read_turn(messages: list[dict[str, Any]]) -> _Turn | None:
    start = next((i for i in range(len(messages) - 1, -1, -1)
                  if messages[i].get("role") == "user" and not is_image_note(messages[i])), None)
    if start is None:
        return None
    after = messages[start + 1:]
    calls: list[tuple[str, str]] = []
    results: dict[str, Any] = {}
    for message in after:
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    calls.append((str(call.get("id")), str(call["function"].get("name") or "")))
        elif message.get("role") == "tool":
            results[str(message.get("tool_call_id"))] = message
    answered = bool(after) and (after[-1].get("role") == "tool" or is_image_note(after[-1]))
    return _Turn(_prompt_text(messages[start].get("content")), calls, results, not after,
                 answered)


def code_to_run(prompt: str) -> str | None:
    """The first fenced code block of the prompt (its info string dropped), else inline code in
    backticks right after the word "run"; ``None`` when there is neither."""
    for fence in _FENCE.finditer(prompt):
        first, newline, rest = fence.group(1).partition("\n")
        body = rest if newline and _INFO_STRING.fullmatch(first) else fence.group(1)
        code = body.strip("\n").rstrip()
        if code.strip():
            return code
    inline = _RUN_INLINE.search(prompt)
    if inline and inline.group(1).strip():
        return inline.group(1).strip()
    return None


def _asks_for_plot(prompt: str) -> bool:
    prose = _INLINE.sub(" ", _FENCE.sub(" ", prompt))
    return bool(_PLOT_WORD.search(prose))


def _listed(listing: str) -> list[tuple[str, str]]:
    """(name, type summary) of each ``name: summary`` line of a ``list_variables`` result."""
    return [(m.group(1), m.group(2).strip()) for m in _LISTED.finditer(listing)]


def _mentioned(prompt: str, names: list[str]) -> list[str]:
    """The names that occur in the prompt as whole words (``@name`` included), in order."""
    hits = []
    for name in dict.fromkeys(names):
        match = re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", prompt)
        if match:
            hits.append((match.start(), name))
    return [name for _, name in sorted(hits)]


def _explicit_names(prompt: str) -> list[str]:
    """``@name`` and `` `name` `` identifiers of the prompt, in order, once each."""
    names = (next(g for g in m.groups() if g) for m in _EXPLICIT_NAME.finditer(prompt))
    return list(dict.fromkeys(names))


def _code_list(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _inspect(names: list[str], why: str) -> KernelStep:
    them = "it" if len(names) == 1 else "them"
    return KernelStep(reasoning=f"{why} {_code_list(names)}, so I inspect {them}.",
                      calls=[("inspect_variable", {"name": n}) for n in names])


def _list_first(why: str) -> KernelStep:
    return KernelStep(reasoning=f"{why}, so I first list the notebook's variables.",
                      calls=[("list_variables", {})])


def _run_code(turn: _Turn, code: str) -> KernelStep | None:
    if turn.called("run_python"):
        return None
    return KernelStep(reasoning="The prompt contains code, so I run it in the kernel.",
                      calls=[("run_python", {"code": code})])


def _plot(turn: _Turn, offered: Collection[str]) -> KernelStep | None:
    if turn.called("run_python"):
        return None
    if "list_variables" in offered and not turn.called("list_variables"):
        return _list_first("The prompt asks for a plot and may name a variable to plot")
    listing = _listed(turn.last_result("list_variables") or "")
    plottable = [n for n, kind in listing if kind.split(" ", 1)[0] in _PLOTTABLE]
    target = next(iter(_mentioned(turn.prompt, plottable)), None)
    if target is None:
        return KernelStep(reasoning="The prompt asks for a plot, so I draw a small demo plot.",
                          calls=[("run_python", {"code": DEMO_PLOT})])
    code = f"import matplotlib.pyplot as plt\n{target}.plot(figsize=(4, 3))\nplt.show()"
    return KernelStep(reasoning=f"The prompt asks for a plot of `{target}`, so I plot it.",
                      calls=[("run_python", {"code": code})])


def _variables(turn: _Turn, offered: Collection[str]) -> KernelStep | None:
    if turn.fresh:
        if "list_variables" in offered:
            return _list_first("The prompt may name notebook variables")
        names = _explicit_names(turn.prompt)[:_MAX_INSPECT]
        return _inspect(names, "The prompt names") if names else None
    if turn.called("inspect_variable"):
        return None
    listing_text = turn.last_result("list_variables")
    if listing_text is None:
        return None
    listing = _listed(listing_text)
    visible = [n for n, kind in listing if kind != "<hidden>"]
    names = _mentioned(turn.prompt, visible)[:_MAX_INSPECT]
    if names:
        return _inspect(names, "The prompt mentions")
    return KernelStep(reasoning="The prompt names none of the listed variables, so I answer "
                                "from the list.", text=_from_the_list(listing, listing_text))


def _from_the_list(listing: list[tuple[str, str]], raw: str) -> str:
    if not listing:
        if raw.strip() == "(no user variables)":
            return "The notebook has no user variables yet."
        return f"The list_variables tool returned \"{_quote(raw)}\"."
    lines = [f"- `{name}`: {kind}" for name, kind in listing[:_MAX_LISTED]]
    if len(listing) > _MAX_LISTED:
        lines.append(f"- … and {len(listing) - _MAX_LISTED} more")
    return ("The notebook's variables (from list_variables):\n\n" + "\n".join(lines) +
            "\n\nMention one by name (or as `@name`) and the demo model will inspect it.")


def kernel_step(messages: list[dict[str, Any]], offered: Collection[str],
                named: Callable[[str], list[str]]) -> KernelStep | None:
    """The next step of a kernel rule for this request, or ``None`` when no kernel rule applies
    (or its sequence is complete, so the results are answered as any tool results are).
    ``named(prompt)`` gives the offered tools the prompt names (the named-tools rule)."""
    if "run_python" not in offered and "inspect_variable" not in offered:
        return None
    turn = _read_turn(messages)
    if turn is None or not (turn.fresh or turn.answered):
        return None
    if "run_python" in offered:
        code = code_to_run(turn.prompt)
        if code is not None:
            return _run_code(turn, code)
        if _asks_for_plot(turn.prompt):
            return _plot(turn, offered)
    if "inspect_variable" in offered:
        others = [n for n in named(turn.prompt) if n not in ("list_variables", "inspect_variable")]
        if not others:
            return _variables(turn, offered)
    return None


def _quote(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 1].rstrip() + "…"


def image_counts(messages: list[dict[str, Any]]) -> dict[str, int]:
    """Images per tool call id: image parts inside tool messages and in the image notes."""
    counts: dict[str, int] = {}
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        images = sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
        if message.get("role") == "tool":
            call_id: str | None = str(message.get("tool_call_id"))
        else:
            note = _NOTE_ID.match(message_text(content)) if is_image_note(message) else None
            call_id = note.group(1) if note else None
        if call_id is not None and images:
            counts[call_id] = counts.get(call_id, 0) + images
    return counts


_IMAGES_ATTACHED = re.compile(r"\[\d+ images? attached\]")


def run_python_sentence(text: str, images: int) -> str:
    """The answer's sentence for one ``run_python`` result: the error it raised, the figure(s)
    it produced, or what it printed."""
    text = text.strip()
    if text == _EMPTY_RESULT:
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    if errors and ("Traceback (most recent call last)" in text or errors[-1] == lines[-1]):
        return f"The run_python tool ran the code, which raised an error: \"{_quote(errors[-1])}\"."
    if "was not run" in text or "not run:" in text:  # refused headless, or the person chose Skip
        return f"The run_python tool did not run the code: \"{_quote(text)}\"."
    printed = "\n".join(
        line
        for line in text.splitlines()
        if "[image" not in line.casefold() and not _IMAGES_ATTACHED.fullmatch(line.strip())
    )
    if images == 0 and printed != text:
        images = 1
    if images:
        figure = "a figure" if images == 1 else f"{images} figures"
        said = f"; it also printed \"{_quote(printed)}\"" if printed.strip() else ""
        return f"The run_python tool ran the code and produced {figure}{said}."
    if not text:
        return "The run_python tool ran the code; it printed nothing."
    return f"The run_python tool ran the code and printed \"{_quote(text)}\"."
