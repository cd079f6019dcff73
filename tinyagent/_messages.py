"""Messages and their content blocks: the form in which a conversation crosses every boundary.

Split from :mod:`tinyagent.agent_types`, which re-exports every name (the 1.2.29 import path):
the JSON aliases, the usage and timestamp helpers, the four blocks and the four message kinds
(docs/architecture.md#types). Also two rules over messages that :mod:`tinyagent.agent` names:
``extract_text`` and ``default_convert_to_llm``. A leaf module (pydantic only), so the rest of
``agent_types`` can build on it without an import cycle.
"""

from __future__ import annotations

import copy
import time
from typing import Annotated, Any, Literal, Protocol, TypeAlias, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

# --------------------------------------------------------------------------------------------
# JSON aliases and small helpers
# --------------------------------------------------------------------------------------------

JsonPrimitive: TypeAlias = str | int | float | bool | None
JsonValue = TypeAliasType("JsonValue", "JsonPrimitive | list[JsonValue] | dict[str, JsonValue]")
JsonObject: TypeAlias = dict[str, Any]

#: The canonical all-zero usage (docs/architecture.md#types). Never placed into a message: use
#: :func:`new_zero_usage` for a fresh copy.
ZERO_USAGE: JsonObject = {
    "input": 0,
    "output": 0,
    "cache_read": 0,
    "cache_write": 0,
    "total_tokens": 0,
    "cost": {"input": 0.0, "output": 0.0, "cache_read": 0.0, "cache_write": 0.0, "total": 0.0},
}


def new_zero_usage() -> JsonObject:
    """A fresh deep copy of :data:`ZERO_USAGE`, safe to put into a message and mutate."""
    return copy.deepcopy(ZERO_USAGE)


_USAGE_KEYS = frozenset(ZERO_USAGE)
_COST_KEYS = frozenset(ZERO_USAGE["cost"])


def check_usage(usage: object, where: str) -> JsonObject:
    """``usage`` itself when it has every key of :data:`ZERO_USAGE` and of its ``cost`` (presence
    only), else ``RuntimeError("<where>: usage …")`` saying what is missing or not a dict."""
    if not isinstance(usage, dict):
        raise RuntimeError(f"{where}: usage must be a dict")
    missing = sorted(_USAGE_KEYS.difference(usage))
    if missing:
        raise RuntimeError(f"{where}: usage missing key(s): {', '.join(missing)}")
    cost = usage["cost"]
    if not isinstance(cost, dict):
        raise RuntimeError(f"{where}: usage.cost must be a dict")
    missing = sorted(_COST_KEYS.difference(cost))
    if missing:
        raise RuntimeError(f"{where}: usage.cost missing key(s): {', '.join(missing)}")
    return usage


def now_ms() -> int:
    """Epoch milliseconds: the only timestamp format the package creates."""
    return int(time.time() * 1000)


@runtime_checkable
class ModelDumpable(Protocol):
    def model_dump(self, *, exclude_none: bool = True) -> dict[str, Any]: ...


def dump_model_dumpable(value: object, *, where: str) -> dict[str, Any]:
    """Serialize a message for a provider boundary, with a clear error for anything else."""
    # pydantic models are checked first: a runtime-Protocol isinstance is slow for every message.
    if not isinstance(value, BaseModel) and not isinstance(value, ModelDumpable):
        raise TypeError(f"{where}: expected model payload with model_dump(exclude_none=True)")
    dumped = value.model_dump(exclude_none=True)
    if not isinstance(dumped, dict):
        raise TypeError(f"{where}: model_dump(exclude_none=True) must return a dict")
    return dumped


class _Model(BaseModel):
    """Base of the pydantic types of ``agent_types``: extra keys kept, assignment not validated."""

    # defer_build: each model builds its validator on first use, not at import time.
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True, defer_build=True)


# --------------------------------------------------------------------------------------------
# Content blocks and messages (docs/architecture.md#types)
# --------------------------------------------------------------------------------------------


class CacheControl(_Model):
    type: str | None = None


class TextContent(_Model):
    type: Literal["text"] = "text"
    text: str | None = None
    text_signature: str | None = None
    cache_control: CacheControl | None = None


class ImageContent(_Model):
    type: Literal["image"] = "image"
    url: str | None = None
    mime_type: str | None = None


class ThinkingContent(_Model):
    type: Literal["thinking"] = "thinking"
    thinking: str | None = None
    thinking_signature: str | None = None
    cache_control: CacheControl | None = None


class ToolCallContent(_Model):
    type: Literal["tool_call"] = "tool_call"
    id: str | None = None
    name: str | None = None
    arguments: JsonObject = Field(default_factory=dict)
    partial_json: str | None = None


ToolCall = ToolCallContent

AssistantContent: TypeAlias = TextContent | ThinkingContent | ToolCallContent
_AssistantBlock = Annotated[AssistantContent, Field(discriminator="type")]
_UserBlock = Annotated[TextContent | ImageContent, Field(discriminator="type")]

StopReason: TypeAlias = Literal[
    "complete", "error", "aborted", "tool_calls", "stop", "length", "tool_use"
]
STOP_REASONS: frozenset[str] = frozenset(
    {"complete", "error", "aborted", "tool_calls", "stop", "length", "tool_use"}
)


class UserMessage(_Model):
    role: Literal["user"] = "user"
    content: list[_UserBlock] = Field(default_factory=list)
    timestamp: int | None = None


class AssistantMessage(_Model):
    role: Literal["assistant"] = "assistant"
    content: list[_AssistantBlock | None] = Field(default_factory=list)
    stop_reason: StopReason | None = None
    timestamp: int | None = None
    api: str | None = None
    provider: str | None = None
    model: str | None = None
    usage: JsonObject | None = None
    error_message: str | None = None


class ToolResultMessage(_Model):
    role: Literal["tool_result"] = "tool_result"
    tool_call_id: str | None = None
    tool_name: str | None = None
    content: list[_UserBlock] = Field(default_factory=list)
    details: JsonObject = Field(default_factory=dict)
    is_error: bool = False
    terminate: bool = Field(default=False, exclude=True)
    timestamp: int | None = None


class CustomAgentMessage(_Model):
    """Base for application messages; the default ``convert_to_llm`` never sends them."""

    role: str = ""
    timestamp: int | None = None


Message: TypeAlias = UserMessage | AssistantMessage | ToolResultMessage
AgentMessage: TypeAlias = Message | CustomAgentMessage


_LLM_ROLES = ("user", "assistant", "tool_result")


async def default_convert_to_llm(messages: list[AgentMessage]) -> list[Message]:
    """Keep the messages a provider understands: user, assistant and tool results."""
    return [m for m in messages if getattr(m, "role", None) in _LLM_ROLES]  # type: ignore[misc]


def extract_text(message: AgentMessage | None) -> str:
    """The concatenated text blocks of a user, assistant or tool-result message."""
    if not isinstance(message, (UserMessage, AssistantMessage, ToolResultMessage)):
        return ""
    return "".join(b.text for b in message.content if isinstance(b, TextContent) and b.text)
