"""What ``backend="ray"`` must pickle, checked before Ray is touched (docs/batch.md#ray-backend).

:func:`check_picklable` pickles the agent's config and the batch settings as the workers will
receive them; when that fails it names the part that does not pickle (a tool, a hook, the prompt
function, ``output_type``) and walks down from it to the innermost object that does not, with
advice for the common cases (a kernel tool bound to the IPython shell, an open file).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import io
import types
from collections.abc import Iterator
from typing import Any

from ._config import AgentConfig
from ._runner import RowSettings

__all__ = ["NotPicklableError", "check_picklable", "pickle_error"]


class NotPicklableError(TypeError):
    """Part of the agent (a tool, a hook, the prompt function) cannot be sent to Ray workers."""


def check_picklable(config: AgentConfig, settings: RowSettings) -> bytes:
    """The pickled ``(config, settings)``, or :class:`NotPicklableError` naming what is not."""
    cloudpickle = importlib.import_module("ray.cloudpickle")
    try:
        return cloudpickle.dumps((config, settings))  # type: ignore[no-any-return]
    except Exception as whole:
        for label, part in [*_parts(config, settings), ("the batch settings", settings)]:
            if (error := pickle_error(part)) is not None:
                raise NotPicklableError(_explain(label, part, error)) from error
        raise NotPicklableError(f"backend='ray' could not pickle the agent: {whole}") from whole


def pickle_error(value: Any) -> Exception | None:
    try:
        importlib.import_module("ray.cloudpickle").dumps(value)
    except Exception as exc:
        return exc
    return None


def _parts(config: AgentConfig, settings: RowSettings) -> Iterator[tuple[str, Any]]:
    for tool in config.tools:
        yield f"tool {tool.name!r}", tool
    for owner in (config, config.options):
        for field in dataclasses.fields(owner):
            value = getattr(owner, field.name)
            if field.name not in ("tools", "options") and value is not None:
                yield f"the agent's {field.name}", value
    if callable(settings.prompt.prompt):
        yield "the prompt function", settings.prompt.prompt
    if settings.output is not None:
        yield "output_type", settings.output


def _explain(label: str, part: Any, exc: Exception) -> str:
    path, leaf = _culprit(part, exc)
    where = "".join(f"{' → ' if i else ': '}{step} ({_describe(value)})"
                    for i, (step, value) in enumerate(path))  # fmt: skip
    shell = any(_is_shell(value) for value in [part, *(value for _, value in path)])
    advice = (
        "The notebook's kernel tools work on this kernel's variables and cannot run in another "
        "process: use backend='local' for them"
        if shell
        else "Make such objects inside the tool's function (or in an importable module) "
        "instead of capturing them, or use backend='local'"
    )
    return (
        f"backend='ray' pickles the agent to send it to the Ray workers, and {label} does not "
        f"pickle{where}: {type(leaf).__name__}: {leaf}. {advice}"
    )


def _culprit(obj: Any, error: Exception) -> tuple[list[tuple[str, Any]], Exception]:
    """The steps from ``obj`` down to the innermost object that does not pickle, its error."""
    path: list[tuple[str, Any]] = []
    seen = {id(obj)}
    while len(path) < 8 and not _is_shell(obj):
        for step, child in _children(obj):
            if id(child) not in seen and (exc := pickle_error(child)) is not None:
                path.append((step, child))
                obj, error = child, exc
                break
            seen.add(id(child))
        else:
            break
    return path, error


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, types.MethodType):
        yield "bound to", obj.__self__
        yield "its function", obj.__func__
    elif isinstance(obj, functools.partial):
        yield "partial of", obj.func
        yield from ((f"argument {i}", v) for i, v in enumerate(obj.args))
        yield from ((f"argument `{k}`", v) for k, v in obj.keywords.items())
    elif isinstance(obj, types.FunctionType):
        if getattr(obj, "_tinyagent_threaded", False):  # a plain def run in a thread: its own
            yield from _children(getattr(obj, "__wrapped__", None))
            return
        code = obj.__code__
        for name, cell in zip(code.co_freevars, obj.__closure__ or (), strict=False):
            try:
                yield f"closes over `{name}`", cell.cell_contents
            except ValueError:  # an empty cell
                continue
        for name in sorted(_global_names(code) & obj.__globals__.keys()):
            yield f"uses the global `{name}`", obj.__globals__[name]
        yield from ((f"default {i}", v) for i, v in enumerate(obj.__defaults__ or ()))
        yield from ((f"attribute `{k}`", v) for k, v in vars(obj).items() if k != "__wrapped__")
    elif isinstance(obj, dict):
        yield from ((f"item {k!r}", v) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        yield from ((f"item {i}", v) for i, v in enumerate(obj))
    else:
        state = getattr(obj, "__dict__", None)  # a pydantic model's fields too
        if isinstance(state, dict):
            yield from ((f"its {k}", v) for k, v in state.items())


def _global_names(code: types.CodeType) -> set[str]:
    inner = [const for const in code.co_consts if isinstance(const, types.CodeType)]
    return set(code.co_names).union(*map(_global_names, inner))


def _is_shell(value: Any) -> bool:
    return any(
        cls.__name__ == "InteractiveShell" and cls.__module__.startswith("IPython")
        for cls in type(value).__mro__
    )


def _describe(value: Any) -> str:
    if _is_shell(value):
        return "the IPython shell of this notebook"
    if isinstance(value, io.IOBase):
        name = getattr(value, "name", None)
        return f"an open file {name!r}" if name else "an open file"
    if isinstance(value, types.FunctionType | types.MethodType):
        return f"function {value.__qualname__}"
    kind = type(value)
    module = "" if kind.__module__ == "builtins" else kind.__module__ + "."
    return f"a {module}{kind.__qualname__}"
