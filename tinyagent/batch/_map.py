"""``Agent.map``: the method body lives here so ``agent.py`` stays the Agent's API in brief."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinyagent.agent import Agent

    from ._result import BatchResult

__all__ = ["agent_map"]


async def agent_map(self: Agent, inputs: Any, **options: Any) -> BatchResult:
    """Run this agent over ``inputs``, each on a fresh copy of its configuration:
    ``await agent.map(rows, prompt="Classify: {text}")`` is
    ``await tinyagent.batch.arun_batch(agent, rows, ...)`` (same options, docs/batch.md)."""
    from . import arun_batch

    return await arun_batch(self, inputs, **options)
