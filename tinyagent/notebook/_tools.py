"""Plain Python functions → ``AgentTool`` (docs/notebook.md#tools-from-functions,
``-t/--tools``).

The JSON Schema comes from the signature and type hints through a pydantic model, so anything
pydantic understands (``Literal``, ``Enum``, nested models, ``list[int]``, ``Optional``) works;
parameter descriptions come from a Google-style ``Args:`` section of the docstring. Arguments are
validated (and coerced, e.g. ``2`` → ``2.0``) by the same model before the call.

Sync functions run in a daemon worker thread (``tinyagent._tool_functions``, the same runner a
plain-``def`` ``AgentTool.execute`` gets) so the kernel loop stays live while they work.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, create_model

from tinyagent._tool_functions import call_in_thread, is_async_callable
from tinyagent.agent_types import AgentTool, AgentToolResult, TextContent

#: parameters the tool receives from the loop instead of the model
_INJECTED = ("signal", "on_update", "tool_call_id")


def _doc_parts(func: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """(summary, {param: description}) from a Google- or Sphinx-style docstring."""
    doc = inspect.getdoc(func) or ""
    params: dict[str, str] = {}
    summary_lines: list[str] = []
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        header = stripped.rstrip(":").lower()
        if stripped.endswith(":") and header in ("args", "arguments", "parameters", "params"):
            section, current = "args", None
            continue
        if stripped.endswith(":") and header in (
            "returns",
            "return",
            "raises",
            "yields",
            "example",
            "examples",
        ):
            section, current = "other", None
            continue
        sphinx = re.match(r":param\s+(?:\S+\s+)?(\w+):\s*(.*)", stripped)
        if sphinx:
            params[sphinx.group(1)] = sphinx.group(2)
            section = "other"
            continue
        if section == "args":
            match = re.match(r"(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)", stripped)
            if match and not line.startswith(" " * 8):
                current = match.group(1)
                params[current] = match.group(2)
            elif current and stripped:
                params[current] = f"{params[current]} {stripped}".strip()
        elif section is None:
            summary_lines.append(line)
    summary = "\n".join(summary_lines).strip()
    return summary, params


def _strip_titles(schema: Any) -> Any:
    """Drop pydantic's auto-generated ``title`` keys: noise for the model, not meaning."""
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v) for k, v in schema.items() if k != "title" or not isinstance(v, str)
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _as_result(value: Any) -> AgentToolResult:
    if isinstance(value, AgentToolResult):
        return value
    if isinstance(value, str):
        return AgentToolResult(content=[TextContent(text=value)])
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
        details: dict[str, Any] = {"value": json.loads(text)}
    except (TypeError, ValueError):
        text, details = str(value), {}
    return AgentToolResult(content=[TextContent(text=text)], details=details)


def function_tool(func: Callable[..., Any], name: str | None = None) -> AgentTool:
    """Build an ``AgentTool`` from a plain function (sync or async).

    Parameters named ``signal``, ``on_update`` or ``tool_call_id`` are filled by the loop and kept
    out of the schema. ``*args``/``**kwargs`` are not expressible as a JSON object and are rejected.
    """
    if not callable(func):
        raise TypeError(f"{func!r} is not callable")
    tool_name = name or getattr(func, "__name__", None) or type(func).__name__
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tool_name):
        raise ValueError(f"tool name {tool_name!r} must match [A-Za-z0-9_-]{{1,64}}")
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolved forward refs: fall back to raw annotations
        hints = {}
    summary, param_docs = _doc_parts(func)
    fields: dict[str, Any] = {}
    injected: list[str] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(
                f"tool {tool_name!r}: *args/**kwargs cannot be described as JSON arguments"
            )
        if param.name in _INJECTED:
            injected.append(param.name)
            continue
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, Field(default, description=param_docs.get(param.name)))
    args_model = create_model(  # type: ignore[call-overload]
        f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )
    schema = _strip_titles(args_model.model_json_schema())
    schema.setdefault("properties", {})
    schema["type"] = "object"
    is_async = is_async_callable(func)

    async def execute(
        tool_call_id: str, args: dict[str, Any], signal: Any, on_update: Any
    ) -> AgentToolResult:
        try:
            parsed = args_model.model_validate(args or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ValueError(f"Invalid arguments for tool '{tool_name}': {problems}") from None
        kwargs = {key: getattr(parsed, key) for key in fields}
        extras = {"signal": signal, "on_update": on_update, "tool_call_id": tool_call_id}
        kwargs.update({key: extras[key] for key in injected})
        if is_async:
            value = await func(**kwargs)
        else:
            value = await call_in_thread(func, (), kwargs, tool_name)
            if inspect.isawaitable(value):
                value = await value
        return _as_result(value)

    return AgentTool(
        name=tool_name,
        description=summary or f"Python function {tool_name}",
        parameters=schema,
        label=tool_name,
        execute=execute,
    )


def as_tool(value: Any, name: str) -> AgentTool:
    """An ``AgentTool`` as is, anything else callable through :func:`function_tool`."""
    if isinstance(value, AgentTool):
        return value
    if callable(value):
        # the name the user typed in ``-t`` is the name the model sees
        return function_tool(value, name=name)
    raise TypeError(f"'{name}' is a {type(value).__name__}, not an AgentTool or a function")
