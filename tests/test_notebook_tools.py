"""Plain functions → AgentTool: schema from signature/hints/docstring, validation, threads."""

from __future__ import annotations

import asyncio
import threading
import time
from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from tinyagent.agent_types import AgentTool, AgentToolResult, TextContent
from tinyagent.notebook import function_tool
from tinyagent.notebook._tools import as_tool


class Unit(StrEnum):
    C = "celsius"
    F = "fahrenheit"


class Point(BaseModel):
    x: float
    y: float


def weather(
    city: str, unit: Unit = Unit.C, days: int = 1, tags: list[str] | None = None
) -> dict[str, Any]:
    """Get the forecast for a city.

    Longer explanation that is part of the summary.

    Args:
        city: Name of the city.
        unit: Temperature unit.
        days: How many days
            ahead to look.
        tags: Optional labels.

    Returns:
        The forecast.
    """
    return {"city": city, "unit": unit.value, "days": days}


def run(tool: AgentTool, args: dict[str, Any], **kw: Any) -> AgentToolResult:
    async def go() -> AgentToolResult:
        return await tool.execute(
            "call-1", args, kw.get("signal"), kw.get("on_update", lambda r: None)
        )

    return asyncio.run(go())


def test_schema_comes_from_hints_defaults_and_docstring() -> None:
    tool = function_tool(weather)
    assert tool.name == "weather" and tool.label == "weather"
    assert tool.description.startswith("Get the forecast for a city.")
    assert "Returns" not in tool.description and "Args" not in tool.description
    schema = tool.parameters
    assert schema["type"] == "object" and schema["required"] == ["city"]
    props = schema["properties"]
    assert props["city"] == {"type": "string", "description": "Name of the city."}
    assert props["days"]["type"] == "integer" and props["days"]["default"] == 1
    assert props["days"]["description"] == "How many days ahead to look."
    assert "title" not in props["city"]
    assert props["unit"]["$ref"].endswith("Unit") and schema["$defs"]["Unit"]["enum"] == [
        "celsius",
        "fahrenheit",
    ]
    assert schema.get("additionalProperties") is False


def test_arguments_are_validated_and_coerced_and_results_become_text() -> None:
    tool = function_tool(weather)
    result = run(tool, {"city": "Oslo", "unit": "fahrenheit"})
    assert result.content[0].text == '{"city": "Oslo", "unit": "fahrenheit", "days": 1}'
    assert result.details == {"value": {"city": "Oslo", "unit": "fahrenheit", "days": 1}}
    with pytest.raises(ValueError, match="Invalid arguments for tool 'weather': days"):
        run(tool, {"city": "Oslo", "days": "many"})
    with pytest.raises(ValueError, match="city: Field required"):
        run(tool, {})


def test_nested_models_literals_and_agent_tool_results_pass_through() -> None:
    def place(point: Point, mode: Literal["fast", "exact"] = "fast") -> AgentToolResult:
        """Place a point."""
        return AgentToolResult(content=[TextContent(text=f"{point.x},{point.y},{mode}")])

    tool = function_tool(place)
    assert tool.parameters["properties"]["mode"]["enum"] == ["fast", "exact"]
    assert run(tool, {"point": {"x": 1, "y": 2}}).content[0].text == "1.0,2.0,fast"


def test_sync_functions_run_in_a_worker_thread_and_the_loop_stays_live() -> None:
    main = threading.get_ident()
    seen: list[int] = []

    def slow(seconds: float) -> str:
        """Sleep."""
        seen.append(threading.get_ident())
        time.sleep(seconds)
        return "slept"

    tool = function_tool(slow)

    async def go() -> tuple[str, int]:
        ticks = 0
        task = asyncio.ensure_future(tool.execute("c", {"seconds": 0.3}, None, None))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.01)
        return task.result().content[0].text, ticks

    text, ticks = asyncio.run(go())
    assert text == "slept" and seen and seen[0] != main
    assert ticks > 5, "the event loop kept running while the tool worked"


def test_cancelled_sync_tool_is_detached_at_once(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    def stuck() -> str:
        """Never finishes on its own."""
        release.wait(5)
        return "late"

    tool = function_tool(stuck)

    async def go() -> float:
        task = asyncio.ensure_future(tool.execute("c", {}, None, None))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    with caplog.at_level("WARNING", logger="tinyagent.tools"):
        assert asyncio.run(go()) < 0.5
    release.set()
    assert "detached" in caplog.text


def test_async_functions_and_injected_parameters() -> None:
    updates: list[AgentToolResult] = []

    async def count(n: int, on_update: Any, signal: Any, tool_call_id: str) -> list[int]:
        """Count up."""
        for i in range(n):
            on_update(AgentToolResult(content=[TextContent(text=str(i))]))
        return [tool_call_id, signal is None]  # type: ignore[list-item]

    tool = function_tool(count)
    assert list(tool.parameters["properties"]) == ["n"]
    result = run(tool, {"n": 3}, on_update=updates.append)
    assert len(updates) == 3 and result.content[0].text == '["call-1", true]'


def test_bad_inputs_give_clear_errors() -> None:
    def variadic(*args: int) -> int:
        return 0

    with pytest.raises(TypeError, match=r"\*args/\*\*kwargs"):
        function_tool(variadic)
    with pytest.raises(TypeError, match="not an AgentTool or a function"):
        as_tool(42, "answer")
    assert as_tool(lambda x: x, "echo").name == "echo", "the namespace name is the tool name"
    with pytest.raises(ValueError, match="must match"):
        function_tool(weather, name="bad name!")
    existing = AgentTool(name="t")
    assert as_tool(existing, "other") is existing
