"""Tool-argument validation against the tool's JSON Schema (docs/events.md#argument-validation;
docs/architecture.md#differences #12).

The validator class follows the schema's ``$schema`` (draft-07 schemas declared as such validate
as draft-07); undeclared schemas use JSON Schema 2020-12, under which the common draft-07 forms
(``definitions`` refs, ``required``, ``enum``) behave the same, and fall back to draft-07 when
2020-12 rejects them (``items`` given as a list).
"""

from __future__ import annotations

import json
from typing import Any

from .agent_types import AgentTool, JsonObject, ToolCallContent

#: Compiled validators by the identity of the tool's ``parameters`` dict. The dict is kept in the
#: entry, so a recycled ``id`` of a collected schema can never match.
_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}
_MAX_CACHED = 256


class ToolArgumentsError(ValueError):
    """The arguments of a tool call are not valid JSON or do not match the tool's schema."""

    def __init__(
        self,
        message: str,
        *,
        tool_name: str,
        errors: list[str] | None = None,
        raw: str | None = None,
    ) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        self.errors: list[str] = list(errors or [])
        self.raw = raw


def validate_tool_arguments(tool: AgentTool | None, tool_call: ToolCallContent) -> JsonObject:
    """Return the call's arguments (the same object, unchanged) or raise ``ToolArgumentsError``."""
    name = (tool.name if tool is not None else None) or tool_call.name or ""
    args, raw = _parsed_arguments(name, tool_call)
    schema = tool.parameters if tool is not None else None
    if not schema:
        return args
    validator = _validator(name, schema)
    errors = [f"{_pointer(e.absolute_path)}: {e.message}" for e in validator.iter_errors(args)]
    if errors:
        lines = "\n".join(f"- {line}" for line in errors)
        raise ToolArgumentsError(
            f"Invalid arguments for tool '{name}':\n{lines}", tool_name=name, errors=errors, raw=raw
        )
    return args


def _parsed_arguments(name: str, tool_call: ToolCallContent) -> tuple[JsonObject, str | None]:
    args: Any = tool_call.arguments
    raw: str | None = None
    if isinstance(args, str):
        raw = args
    elif not args and isinstance(tool_call.partial_json, str) and tool_call.partial_json:
        # The call finished but its text did not parse: report it instead of running with {}.
        raw = tool_call.partial_json
    elif args is None:
        return {}, None
    if raw is not None:
        try:
            args = json.loads(raw)
        except ValueError as exc:
            raise _not_json(name, str(exc), raw) from None
    if not isinstance(args, dict):
        shown = raw if raw is not None else _dumps(args)
        raise _not_json(name, f"expected a JSON object, got {type(args).__name__}", shown)
    return args, raw


def _not_json(name: str, reason: str, raw: str) -> ToolArgumentsError:
    return ToolArgumentsError(
        f"Arguments for tool '{name}' are not valid JSON: {reason}; received: {raw[:200]}",
        tool_name=name,
        errors=[f"(root): {reason}"],
        raw=raw,
    )


def _validator(name: str, schema: dict[str, Any]) -> Any:
    cached = _VALIDATORS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    # Imported on first use: with optional format packages installed (rfc3987-syntax, which
    # JupyterLab pulls in), importing jsonschema builds a grammar and costs over a second.
    from jsonschema import Draft7Validator, Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        cls = validator_for(schema, default=Draft202012Validator)
        try:
            cls.check_schema(schema)
        except SchemaError:
            if "$schema" in schema:
                raise
            # Undeclared draft-07 forms that 2020-12 rejects (``items`` as a list): use draft-07.
            cls = Draft7Validator
            cls.check_schema(schema)
        validator = cls(schema)
    except SchemaError as exc:
        raise ToolArgumentsError(
            f"Tool '{name}' has an invalid parameters schema: {exc.message}",
            tool_name=name,
            errors=[exc.message],
        ) from None
    if len(_VALIDATORS) >= _MAX_CACHED:
        _VALIDATORS.clear()
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "(root)"


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
