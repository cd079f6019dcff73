"""Tool-argument validation against the tool's JSON Schema (docs/events.md#argument-validation;
docs/architecture.md#differences #12).

The validator class follows the schema's ``$schema`` (draft-07 schemas declared as such validate
as draft-07); undeclared schemas use JSON Schema 2020-12, under which the common draft-07 forms
(``definitions`` refs, ``required``, ``enum``) behave the same, and fall back to draft-07 when
2020-12 rejects them (``items`` given as a list).

Most tool schemas are a flat object of typed properties. For those (:func:`_simple_schema`: only
``type``, ``properties``, ``required``, ``items``, ``enum``, ``additionalProperties`` and
annotations, all well formed) :func:`_conforms` checks the arguments directly, without importing
``jsonschema`` (whose import builds rfc3987 grammars: seconds of CPU and ~130,000 objects that
every full garbage collection then walks). It only ever answers "valid": arguments it does not
accept, and every other schema, go to ``jsonschema``, whose errors are the ones reported.
"""

from __future__ import annotations

import json
from typing import Any

from .agent_types import AgentTool, JsonObject, ToolCallContent

#: Compiled validators by the identity of the tool's ``parameters`` dict. The dict is kept in the
#: entry, so a recycled ``id`` of a collected schema can never match.
_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}
#: Whether a ``parameters`` dict is simple enough for :func:`_conforms` (same keying).
_SIMPLE: dict[int, tuple[dict[str, Any], bool]] = {}
_MAX_CACHED = 256

_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "format", "deprecated"})
_SIMPLE_KEYS = _ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "additionalProperties",
}


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
    if _is_simple(schema) and _conforms(args, schema):
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


def _is_simple(schema: dict[str, Any]) -> bool:
    cached = _SIMPLE.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    simple = _simple_schema(schema)
    if len(_SIMPLE) >= _MAX_CACHED:
        _SIMPLE.clear()
    _SIMPLE[id(schema)] = (schema, simple)
    return simple


def _simple_schema(schema: Any) -> bool:
    """Whether ``schema`` uses only keywords :func:`_conforms` knows, each in a shape that both
    JSON Schema 2020-12 and draft-07 accept (so ``check_schema`` would pass)."""
    if not isinstance(schema, dict) or not _SIMPLE_KEYS.issuperset(schema):
        return False
    if "type" in schema:
        kind = schema["type"]
        if isinstance(kind, list):
            if not kind or len(set(map(repr, kind))) != len(kind):
                return False
            if not all(isinstance(k, str) and k in _TYPES for k in kind):
                return False
        elif not (isinstance(kind, str) and kind in _TYPES):
            return False
    if "properties" in schema:
        properties = schema["properties"]
        if not isinstance(properties, dict):
            return False
        if not all(isinstance(k, str) and _simple_schema(v) for k, v in properties.items()):
            return False
    if "required" in schema:
        required = schema["required"]
        if not isinstance(required, list) or not all(isinstance(k, str) for k in required):
            return False
        if len(set(required)) != len(required):
            return False
    if "items" in schema and not _simple_schema(schema["items"]):
        return False  # a list of schemas (draft-07 tuple form) goes to jsonschema
    if "enum" in schema:
        enum = schema["enum"]
        if not isinstance(enum, list) or not enum:
            return False
    if "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        if not isinstance(extra, bool) and not _simple_schema(extra):
            return False
    for key in ("description", "title", "format"):
        if key in schema and not isinstance(schema[key], str):
            return False
    if "examples" in schema and not isinstance(schema["examples"], list):
        return False
    if "deprecated" in schema and not isinstance(schema["deprecated"], bool):
        return False
    return True


def _has_type(value: Any, kind: str) -> bool:
    # jsonschema's type checker: bool is not a number, an integral float is an integer
    if kind == "string":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, (int, float))  # number


def _conforms(value: Any, schema: dict[str, Any]) -> bool:
    """True only when ``value`` certainly validates against a :func:`_simple_schema`."""
    kind = schema.get("type")
    if kind is not None:
        if isinstance(kind, str):
            if not _has_type(value, kind):
                return False
        elif not any(_has_type(value, k) for k in kind):
            return False
    if "enum" in schema:
        # jsonschema's equality tells 1 from True and 1.0 from 1; here only exact matches of
        # plain scalars are accepted, anything else is left to jsonschema
        if not isinstance(value, (str, int, float, type(None))):
            return False
        if not any(type(e) is type(value) and e == value for e in schema["enum"]):
            return False
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties is not None:
            for key, item in value.items():
                sub = properties.get(key)
                if sub is not None and not _conforms(item, sub):
                    return False
        for key in schema.get("required", ()):
            if key not in value:
                return False
        extra = schema.get("additionalProperties", True)
        if extra is not True:
            others = [item for key, item in value.items() if key not in (properties or {})]
            if extra is False:
                if others:
                    return False
            elif not all(_conforms(item, extra) for item in others):
                return False
    elif isinstance(value, list):
        items = schema.get("items")
        if items is not None and not all(_conforms(item, items) for item in value):
            return False
    return True


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "(root)"


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
