"""Tools that let the model work in the kernel: ``list_variables``, ``inspect_variable`` and
``run_python``.

``kernel_tools(shell=None)`` binds them to the running IPython shell's namespace. ``run_python``
asks before it runs (``approve=False`` turns that off; see ``_approval``), runs the code as a cell
would (``_run_python``) and returns its output, value, error and images; the images are
downscaled to ``image_max_side`` pixels before they reach the model. Every output is
bounded (``limit`` characters, "[truncated]" marking a cut) so a 1,000,000-row DataFrame costs a
few KB, never an unbounded ``repr``. Variables whose names look like secrets are listed as
``<hidden>`` and never inspected, and the values of known API-key variables are scrubbed from
every output. An object may say how it looks to a model with a ``_repr_llm_()`` method.

pandas, polars and numpy are recognised by duck typing and never imported here.
"""

from __future__ import annotations

import base64
import difflib
import inspect
import io
import os
import re
import reprlib
import time
import types
from collections.abc import Callable, Mapping
from typing import Any

from tinyagent._provider_routing import PROVIDER_KEY_ENV
from tinyagent._tool_functions import ToolError
from tinyagent.agent_types import AgentTool, AgentToolResult, ImageContent, TextContent

from . import _approval
from ._run_python import CodeOutcome, run_code

__all__ = [
    "ASKS_FIRST",
    "DEFAULT_LIMIT",
    "inspect_variable",
    "kernel_tools",
    "list_variables",
    "mentions",
]

#: Characters per tool output by default.
DEFAULT_LIMIT = 4000
#: Longest side, in pixels, of an image sent to the model.
IMAGE_MAX_SIDE = 1024
#: Tools that ask for approval themselves (``--confirm`` does not ask a second time).
ASKS_FIRST = frozenset({"run_python"})
#: Seconds between live output updates of a running ``run_python``.
_OUTPUT_INTERVAL = 0.1
TRUNCATED = "\n[truncated]"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
#: IPython's own names in every namespace, besides ``_``-prefixed ones.
_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
_HEAD_ROWS = 5
#: ``@name`` in a prompt; not inside an e-mail address or a decorator-like ``x@y``.
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z_]\w*)")

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist, _short.maxdict = 80, 80, 8, 8


def output_bounds(settings: Mapping[str, Any]) -> tuple[int, int]:
    """What ``%agent config`` sets for kernel-tool outputs and attachments, else the defaults:
    ``(characters per output, pixels per image side)``."""
    return (
        int(settings.get("tool_output_limit") or DEFAULT_LIMIT),
        int(settings.get("image_max_side") or IMAGE_MAX_SIDE),
    )


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def bounded(text: str, limit: int) -> str:
    text = _scrub(text)
    return text if len(text) <= limit else text[: max(0, limit - len(TRUNCATED))] + TRUNCATED


def _scrub(text: str) -> str:
    """Known API keys never reach the model or the page, whatever printed them."""
    for variables in PROVIDER_KEY_ENV.values():
        for variable in variables:
            value = os.environ.get(variable)
            if value and len(value) >= 8 and value in text:
                text = text.replace(value, "***")
    return text


def user_variables(namespace: Mapping[str, Any], hidden: Mapping[str, Any] | None = None):
    """The user's variables: no modules, no ``_``-private names, nothing IPython put there."""
    hidden = hidden or {}
    for name, value in namespace.items():
        if name.startswith("_") or name in _IPYTHON_NAMES or isinstance(value, types.ModuleType):
            continue
        if name in hidden and hidden[name] is value:
            continue
        yield name, value


def summary(value: Any) -> str:
    """One line: the type and a shape or length."""
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"{kind} shape={shape}"
    if isinstance(value, (str, bytes)):
        return f"{kind} len={len(value)}"
    if isinstance(value, Mapping) or isinstance(value, (list, tuple, set, frozenset)):
        return f"{kind} len={len(value)}"
    if callable(value):
        return f"{kind} {getattr(value, '__name__', '')}{_signature(value)}"
    return f"{kind} {_short.repr(value)}"


def list_variables(
    namespace: Mapping[str, Any],
    hidden: Mapping[str, Any] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    lines = []
    for name, value in sorted(user_variables(namespace, hidden)):
        lines.append(f"{name}: <hidden>" if is_secret_name(name) else f"{name}: {summary(value)}")
    return bounded("\n".join(lines) or "(no user variables)", limit)


def inspect_variable(namespace: Mapping[str, Any], name: str, limit: int = DEFAULT_LIMIT) -> str:
    """A structured summary of one variable; ``ToolError`` for a secret or unknown name."""
    name = name.strip()
    if is_secret_name(name):
        raise ToolError(f"{name!r} looks like a secret (key, token, password); it is not shown.")
    if name not in namespace or name.startswith("_"):
        known = [n for n, _ in user_variables(namespace)]
        close = difflib.get_close_matches(name, known, n=5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise ToolError(f"No variable named {name!r}.{hint} Call list_variables to see them all.")
    return bounded(f"{name}: {describe(namespace[name])}", limit)


def mentions(
    text: str, namespace: Mapping[str, Any], limit: int = DEFAULT_LIMIT
) -> tuple[list[str], list[str]]:
    """``@name`` mentions in a prompt: (a labelled summary block per known variable, a one-line
    notice per name that is left as plain text). Each variable is attached once."""
    blocks: list[str] = []
    notices: list[str] = []
    seen: set[str] = set()
    for name in _MENTION.findall(text):
        if name in seen:
            continue
        seen.add(name)
        try:
            summary_text = inspect_variable(namespace, name, limit)
        except ToolError as exc:
            notices.append(f"@{name} left as text: {exc}")
            continue
        blocks.append(f"Variable @{name} (from inspect_variable):\n{summary_text}")
    return blocks, notices


def describe(value: Any) -> str:
    hook = getattr(value, "_repr_llm_", None)
    if callable(hook) and not isinstance(value, type):
        return str(hook())
    if _looks_like_pandas_frame(value):
        return _pandas_frame(value)
    if _looks_like_polars_frame(value):
        return _polars_frame(value)
    if _looks_like_ndarray(value):
        return _ndarray(value)
    if isinstance(value, Mapping):
        return f"{type(value).__name__} with {len(value)} keys\n{_short.repr(value)}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return f"{type(value).__name__} of length {len(value)}\n{_short.repr(value)}"
    if callable(value):
        doc = inspect.getdoc(value) or "(no docstring)"
        return f"{type(value).__name__} {getattr(value, '__name__', '')}{_signature(value)}\n{doc}"
    return f"{type(value).__name__}\n{_short.repr(value)}"


def _signature(value: Any) -> str:
    for eval_str in (True, False):  # real types where the annotations can be evaluated
        try:
            return str(inspect.signature(value, eval_str=eval_str))
        except Exception:  # noqa: BLE001 - any failure here only costs the signature
            continue
    return "(...)"


def _looks_like_pandas_frame(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "dtypes")


def _looks_like_polars_frame(value: Any) -> bool:
    return type(value).__module__.startswith("polars") and hasattr(value, "schema")


def _looks_like_ndarray(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and hasattr(value, "shape")


def _pandas_frame(frame: Any) -> str:
    rows, cols = frame.shape
    parts = [f"DataFrame: {rows} rows x {cols} columns"]
    columns = list(frame.columns)[:50]  # a frame with thousands of columns stays bounded too
    nulls = frame[columns].isna().sum()
    parts.append("columns (dtype, nulls):")
    parts += [f"  {c}: {frame.dtypes[c]}, {int(nulls[c])} null" for c in columns]
    if len(frame.columns) > len(columns):
        parts.append(f"  ... and {len(frame.columns) - len(columns)} more columns")
    parts.append("head:\n" + frame[columns].head(_HEAD_ROWS).to_string(max_colwidth=40))
    numeric = frame[columns].select_dtypes("number")
    if numeric.shape[1]:
        parts.append("describe:\n" + numeric.describe().to_string())
    return "\n".join(parts)


def _polars_frame(frame: Any) -> str:
    rows, cols = frame.shape
    nulls = frame.null_count().row(0)
    parts = [f"polars DataFrame: {rows} rows x {cols} columns", "columns (dtype, nulls):"]
    parts += [
        f"  {c}: {t}, {n} null" for (c, t), n in zip(frame.schema.items(), nulls, strict=False)
    ]
    parts.append("head:\n" + str(frame.head(_HEAD_ROWS)))
    return "\n".join(parts)


def _ndarray(array: Any) -> str:
    parts = [f"ndarray shape={array.shape} dtype={array.dtype}"]
    if array.size and array.dtype.kind in "biuf":
        parts.append(f"min={array.min()} max={array.max()} mean={array.mean():.6g}")
    return "\n".join(parts)


def kernel_tools(
    shell: Any = None,
    *,
    limit: int = DEFAULT_LIMIT,
    approve: bool = True,
    image_max_side: int = IMAGE_MAX_SIDE,
) -> list[AgentTool]:
    """``list_variables``, ``inspect_variable`` and ``run_python`` over ``shell``'s namespace (the
    running IPython shell by default). Only ``run_python`` asks first, unless ``approve=False``."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        raise RuntimeError("kernel_tools() needs a running IPython shell (or pass shell=)")
    always = False  # "Always" answered once: this tool set stops asking

    async def list_execute(tool_call_id: str, args: Any, signal: Any, on_update: Any):
        hidden = getattr(shell, "user_ns_hidden", None)
        return _text(list_variables(shell.user_ns, hidden, limit))

    async def inspect_execute(tool_call_id: str, args: Any, signal: Any, on_update: Any):
        return _text(inspect_variable(shell.user_ns, str(args.get("name", "")), limit))

    async def run_execute(tool_call_id: str, args: Any, signal: Any, on_update: Any):
        nonlocal always
        code = str(args.get("code", ""))
        if not code.strip():
            raise ToolError("run_python needs Python code in its 'code' argument.")
        if approve and not always:
            choice = await _approval.ask(tool_call_id, "run_python", code)
            if choice == _approval.NO_ONE_TO_ASK:
                raise ToolError(_approval.HEADLESS_REFUSAL)
            if choice == _approval.SKIP:
                raise ToolError(_approval.SKIPPED)
            always = choice == _approval.ALWAYS
        last = [0.0]

        def live_output(text_so_far: Callable[[], str]) -> None:
            now = time.monotonic()
            if on_update is not None and now - last[0] >= _OUTPUT_INTERVAL:
                last[0] = now
                on_update(_text(bounded(text_so_far(), limit)))

        outcome = await run_code(shell, code, live_output)
        if outcome.interrupted:
            if signal is not None:
                signal.set()  # the run ends aborted, as the interrupted cell would
            raise ToolError(
                bounded(code_report(outcome), limit)
                + "\nInterrupted: the person stopped the code; what it did before stays."
            )
        if outcome.error is not None:
            raise ToolError(bounded(code_report(outcome), limit))
        content: list[TextContent | ImageContent] = [
            TextContent(text=bounded(code_report(outcome), limit))
        ]
        for mime, data in outcome.images:
            mime, data = downscaled(mime, data, image_max_side)
            url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            content.append(ImageContent(url=url, mime_type=mime))
        return AgentToolResult(content=content)

    return [
        AgentTool(
            name="list_variables",
            label="list_variables",
            description="List the user's variables in the notebook: name, type, shape or length.",
            parameters={"type": "object", "properties": {}},
            execute=list_execute,
        ),
        AgentTool(
            name="inspect_variable",
            label="inspect_variable",
            description=(
                "Describe one notebook variable: for a DataFrame its shape, dtypes, nulls, head and "
                "numeric summary; for an array its shape, dtype and range; else a bounded repr."
            ),
            parameters={
                "type": "object",
                "properties": {"name": {"type": "string", "description": "the variable's name"}},
                "required": ["name"],
            },
            execute=inspect_execute,
        ),
        AgentTool(
            name="run_python",
            label="run_python",
            description=(
                "Run Python code in the user's notebook kernel, in their namespace, like a cell: "
                "returns what it printed, the value of the last expression, the error with its "
                "traceback, and figures (matplotlib) as images. Variables it defines stay."
            ),
            parameters={
                "type": "object",
                "properties": {"code": {"type": "string", "description": "the Python code"}},
                "required": ["code"],
            },
            execute=run_execute,
        ),
    ]


def code_report(outcome: CodeOutcome) -> str:
    """What the model reads about the code's run, in order: output, value, error, images."""
    parts = []
    if outcome.output:
        parts.append(outcome.output.rstrip("\n"))
    if outcome.result is not None:
        parts.append(f"Out: {outcome.result}")
    if outcome.error is not None:
        parts.append(outcome.error)
    if outcome.images:
        count = len(outcome.images)
        parts.append(f"[{count} image{'s' if count > 1 else ''} attached]")
    return "\n".join(parts) or "(the code ran; it printed nothing and has no value)"


def downscaled(mime: str, data: bytes, max_side: int) -> tuple[str, bytes]:
    """The image with its longest side at most ``max_side`` (Pillow, which matplotlib brings);
    unchanged when it is small enough or Pillow is not there."""
    try:
        from PIL import Image
    except ImportError:
        return mime, data
    with Image.open(io.BytesIO(data)) as image:
        if max(image.size) <= max_side:
            return mime, data
        image.thumbnail((max_side, max_side))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    return "image/png", buffer.getvalue()


def _text(text: str) -> AgentToolResult:
    return AgentToolResult(content=[TextContent(text=text)])
