"""Per-run settings: ``agent.prompt(..., options=RunOptions(temperature=0))``.

A field left at :data:`DEFAULT` takes the Agent's own value; any other value, ``None`` included,
holds for that run only. The Agent is never changed, so nothing has to be put back afterwards
(the way httpx merges a request's ``timeout=`` with the client's instead of mutating the client).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, TypeVar

from .agent_types import (
    AfterToolCallFn,
    AgentTool,
    BeforeToolCallFn,
    Model,
    ThinkingLevel,
)

__all__ = ["DEFAULT", "RunOptions"]


class _Default(Enum):
    """The type of :data:`DEFAULT` (an enum member, so type checkers can narrow it away)."""

    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


#: "Use the Agent's own value" for a :class:`RunOptions` field.
DEFAULT: Final = _Default.DEFAULT

T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions:
    """Settings for one ``prompt()`` / ``prompt_text()`` / ``stream()`` / ``continue_()`` run."""

    model: Model | _Default = DEFAULT
    system_prompt: str | _Default = DEFAULT
    #: the tools offered in this run (the Agent's ``state.tools`` stay as they are)
    tools: list[AgentTool] | _Default = DEFAULT
    thinking_level: ThinkingLevel | _Default = DEFAULT
    temperature: float | None | _Default = DEFAULT
    max_tokens: int | None | _Default = DEFAULT
    max_turns: int | None | _Default = DEFAULT
    enable_prompt_caching: bool | _Default = DEFAULT
    session_id: str | None | _Default = DEFAULT
    before_tool_call: BeforeToolCallFn | None | _Default = DEFAULT
    after_tool_call: AfterToolCallFn | None | _Default = DEFAULT


def pick(value: T | _Default, fallback: T) -> T:
    """``value`` unless it is :data:`DEFAULT`."""
    return fallback if value is DEFAULT else value  # type: ignore[return-value]


def check(options: Any) -> RunOptions | None:
    if options is None or isinstance(options, RunOptions):
        return options
    raise TypeError(f"options must be a RunOptions, got {type(options).__name__}")
