"""The fast path of tool-argument validation (``_tool_validation._conforms``) beside jsonschema.

For simple schemas the arguments are checked without jsonschema; it may only ever say "valid"
where jsonschema says valid, and errors always come from jsonschema. Checked here over a fixed
grid of schemas and values, and by a fresh interpreter that runs a tool call without importing
jsonschema.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from jsonschema import Draft202012Validator

from tinyagent._tool_validation import (
    ToolArgumentsError,
    _conforms,
    _simple_schema,
    validate_tool_arguments,
)
from tinyagent.agent_types import AgentTool, ToolCallContent

SCALARS = [None, True, False, 0, 1, -3, 1.0, 2.5, float("nan"), "", "a", "Oslo", "1"]
VALUES = [
    *SCALARS,
    [],
    [1, 2],
    ["a", 1],
    [[1], [2]],
    {},
    {"city": "Oslo"},
    {"city": 1},
    {"city": "Oslo", "unit": "celsius"},
    {"city": "Oslo", "unit": None},
    {"city": "Oslo", "days": 3},
    {"city": "Oslo", "days": 3.0},
    {"city": "Oslo", "days": True},
    {"city": "Oslo", "extra": [1]},
    {"unit": "kelvin"},
    {"point": [1, 2]},
    {"point": [1, "y"]},
    {"nested": {"a": 1}},
    {"nested": {"a": "x"}},
]

SCHEMAS: list[dict] = [
    {},
    {"type": "object"},
    {"type": "string"},
    {"type": "integer"},
    {"type": "number"},
    {"type": "boolean"},
    {"type": "null"},
    {"type": "array"},
    {"type": ["string", "null"]},
    {"type": ["integer", "boolean"]},
    {"enum": ["celsius", "kelvin"]},
    {"enum": [1, True, None, 2.5]},
    {"enum": [[1, 2], {"a": 1}]},
    {"type": "array", "items": {"type": "integer"}},
    {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
    {
        "type": "object",
        "description": "weather",
        "properties": {
            "city": {"type": "string", "description": "a city", "title": "City"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            "days": {"type": "integer", "examples": [1, 3]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "additionalProperties": {"type": "integer"},
    },
    {
        "type": "object",
        "properties": {
            "point": {"type": "array", "items": {"type": "number"}},
            "nested": {"type": "object", "properties": {"a": {"type": "integer"}}},
        },
    },
    {"properties": {"city": {"type": "string", "format": "hostname"}}, "required": ["city"]},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: repr(s)[:60])
def test_fast_path_never_accepts_what_jsonschema_rejects(schema: dict) -> None:
    assert _simple_schema(schema)
    validator = Draft202012Validator(schema)
    for value in VALUES:
        if _conforms(value, schema):
            assert validator.is_valid(value), (schema, value)


def test_fast_path_accepts_the_valid_values_of_plain_schemas() -> None:
    for schema in SCHEMAS:
        if "enum" in repr(schema):
            continue
        validator = Draft202012Validator(schema)
        for value in VALUES:
            if validator.is_valid(value):
                assert _conforms(value, schema), (schema, value)


@pytest.mark.parametrize(
    "schema",
    [
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {}}},
        {"type": "object", "minProperties": 1},
        {"type": "array", "items": [{"type": "string"}]},
        {"type": "nonsense"},
        {"type": []},
        {"type": ["string", "string"]},
        {"required": ["a", "a"]},
        {"required": "a"},
        {"enum": []},
        {"properties": {"a": True}},
        {"additionalProperties": "no"},
        {"description": 3},
        {"anyOf": [{"type": "string"}]},
    ],
    ids=repr,
)
def test_other_schemas_go_to_jsonschema(schema: dict) -> None:
    assert not _simple_schema(schema)


def test_errors_are_jsonschemas_messages() -> None:
    tool = AgentTool(name="lookup", parameters=SCHEMAS[16])
    call = ToolCallContent(id="c", name="lookup", arguments={"city": 3, "other": 1})
    with pytest.raises(ToolArgumentsError) as info:
        validate_tool_arguments(tool, call)
    assert sorted(info.value.errors) == [
        "(root): Additional properties are not allowed ('other' was unexpected)",
        "/city: 3 is not of type 'string'",
    ]


def test_enum_by_jsonschema_equality_still_validates() -> None:
    # 1.0 == 1 for jsonschema: the fast path leaves it to jsonschema, which accepts it
    tool = AgentTool(name="pick", parameters={"type": "object", "properties": {"n": {"enum": [1]}}})
    call = ToolCallContent(id="c", name="pick", arguments={"n": 1.0})
    assert validate_tool_arguments(tool, call) == {"n": 1.0}


def test_a_simple_schema_is_validated_without_importing_jsonschema() -> None:
    code = textwrap.dedent(
        """
        import sys
        from tinyagent._tool_validation import validate_tool_arguments
        from tinyagent.agent_types import AgentTool, ToolCallContent
        schema = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"]}
        tool = AgentTool(name="lookup", parameters=schema)
        ok = ToolCallContent(id="c", name="lookup", arguments={"city": "Oslo"})
        assert validate_tool_arguments(tool, ok) == {"city": "Oslo"}
        print("jsonschema" in sys.modules)
        bad = ToolCallContent(id="c", name="lookup", arguments={"city": 1})
        try:
            validate_tool_arguments(tool, bad)
        except ValueError as exc:
            print(exc.errors)
        print("jsonschema" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:3] == ["False", "[\"/city: 1 is not of type 'string'\"]", "True"]
