"""The types every part of tinyagent speaks: messages, content blocks, models, options, tools,
the provider's ``AssistantMessageEvent``, the ten agent events and ``EventStream``.

Names, fields and defaults follow the tiny-agent-os 1.2.29 public API (docs/architecture.md#types,
docs/events.md). Models allow extra keys and skip validation on assignment, as the old package did,
so user code that attaches its own attributes keeps working.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import (
    Annotated,
    Any,
    Literal,
    Protocol,
    TypeAlias,
    TypeGuard,
    TypeVar,
    runtime_checkable,
)

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

# EventStream lives in its own module; the 1.2.29 API names it here
# (docs/architecture.md#public-api).
from ._event_stream import EventStream as EventStream
from ._event_stream import EventStreamQueueItem as EventStreamQueueItem
from ._tool_functions import as_async_execute

T = TypeVar("T")
R = TypeVar("R")

# --------------------------------------------------------------------------------------------
# JSON aliases and small helpers
# --------------------------------------------------------------------------------------------

JsonPrimitive: TypeAlias = str | int | float | bool | None
JsonValue = TypeAliasType("JsonValue", "JsonPrimitive | list[JsonValue] | dict[str, JsonValue]")
JsonObject: TypeAlias = dict[str, Any]
MaybeAwaitable: TypeAlias = T | Awaitable[T]

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
    """Base of every pydantic type here: extra keys kept, assignment not validated."""

    # defer_build: each model builds its validator on first use, not at import time.
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True, defer_build=True)


# --------------------------------------------------------------------------------------------
# Content blocks and messages (docs/architecture.md#types)
# --------------------------------------------------------------------------------------------


class ThinkingLevel(StrEnum):
    OFF = "off"
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    XHIGH = "xhigh"


class ThinkingBudgets(_Model):
    thinking_budget: int | None = None
    max_tokens: int | None = None


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


# --------------------------------------------------------------------------------------------
# Model and options (docs/architecture.md#types)
# --------------------------------------------------------------------------------------------


class Model(_Model):
    provider: str = ""
    id: str = ""
    api: str = ""
    thinking_level: ThinkingLevel = ThinkingLevel.OFF


ReasoningEffort: TypeAlias = Literal["minimal", "low", "medium", "high", "xhigh"]
ReasoningMode: TypeAlias = bool | ReasoningEffort


class SimpleStreamOptions(_Model):
    api_key: str | None = Field(default=None, repr=False)
    temperature: float | None = None
    max_tokens: int | None = None
    signal: asyncio.Event | None = None
    session_id: str | None = None
    reasoning: ReasoningEffort | None = None
    headers: dict[str, str] | None = Field(default=None, repr=False)
    max_retries: int | None = None
    connect_timeout: float | None = None
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None


# --------------------------------------------------------------------------------------------
# Tools (docs/events.md#tool-batch, docs/events.md#hooks)
# --------------------------------------------------------------------------------------------


@dataclass
class AgentToolResult:
    content: list[TextContent | ImageContent] = field(default_factory=list)
    details: JsonObject = field(default_factory=dict)
    terminate: bool = False


AgentToolUpdateCallback: TypeAlias = Callable[[AgentToolResult], None]


@dataclass
class ToolLoopControl:
    terminate: bool = False
    result: AgentToolResult | None = None
    is_error: bool | None = None


@dataclass
class Tool:
    name: str = ""
    description: str = ""
    parameters: JsonObject = field(default_factory=dict)


@dataclass
class AgentTool(Tool):
    label: str = ""
    #: ``async def`` or plain ``def`` (run in a worker thread), checked when assigned.
    execute: Callable[..., Awaitable[AgentToolResult]] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "execute":
            value = as_async_execute(getattr(self, "name", ""), value)
        super().__setattr__(name, value)


# --------------------------------------------------------------------------------------------
# State and contexts (docs/events.md#agent-state, docs/events.md#run-structure)
# --------------------------------------------------------------------------------------------


class AgentState(_Model):
    system_prompt: str = ""
    model: Model | None = None
    thinking_level: ThinkingLevel = ThinkingLevel.OFF
    tools: list[AgentTool] = Field(default_factory=list)
    messages: list[AgentMessage] = Field(default_factory=list)
    is_streaming: bool = False
    stream_message: AgentMessage | None = None
    pending_tool_calls: set[str] = Field(default_factory=set)
    error: str | None = None


@dataclass
class Context:
    system_prompt: str = ""
    messages: list[Any] = field(default_factory=list)
    tools: list[AgentTool] | None = None


@dataclass
class AgentContext:
    system_prompt: str = ""
    messages: list[Any] = field(default_factory=list)
    tools: list[AgentTool] | None = None


ConvertToLlmFn: TypeAlias = Callable[[list[AgentMessage]], MaybeAwaitable[list[Message]]]
TransformContextFn: TypeAlias = Callable[
    [list[AgentMessage], asyncio.Event | None], MaybeAwaitable[list[AgentMessage]]
]
ApiKeyResolver: TypeAlias = Callable[[str], MaybeAwaitable[str | None]]
AgentMessageProvider: TypeAlias = Callable[[], Awaitable[list[AgentMessage]]]
BeforeToolCallFn: TypeAlias = Callable[
    [ToolCallContent, AgentTool | None, JsonObject], MaybeAwaitable[ToolLoopControl | None]
]
AfterToolCallFn: TypeAlias = Callable[
    [ToolCallContent, ToolResultMessage], MaybeAwaitable[ToolLoopControl | None]
]
ShouldStopAfterTurnFn: TypeAlias = Callable[
    [AssistantMessage, list[ToolResultMessage], AgentContext, list[AgentMessage]],
    MaybeAwaitable[bool],
]


# --------------------------------------------------------------------------------------------
# Provider events (docs/events.md#provider-events)
# --------------------------------------------------------------------------------------------

AssistantMessageEventType: TypeAlias = Literal[
    "start",
    "text_start",
    "text_delta",
    "text_end",
    "thinking_start",
    "thinking_delta",
    "thinking_end",
    "tool_call_start",
    "tool_call_delta",
    "tool_call_end",
    "done",
    "error",
    "retry",
]

STREAM_UPDATE_EVENTS: frozenset[str] = frozenset(
    {
        "text_start",
        "text_delta",
        "text_end",
        "thinking_start",
        "thinking_delta",
        "thinking_end",
        "tool_call_start",
        "tool_call_delta",
        "tool_call_end",
    }
)


class AssistantMessageEvent(_Model):
    type: AssistantMessageEventType | None = None
    partial: AssistantMessage | None = None
    content_index: int | None = None
    delta: str | None = None
    content: str | TextContent | ThinkingContent | ToolCallContent | None = None
    tool_call: ToolCallContent | None = None
    reason: str | None = None
    message: AssistantMessage | None = None
    error: AssistantMessage | str | None = None
    attempt: int | None = None
    delay: float | None = None


class StreamResponse(Protocol):
    def __aiter__(self) -> AsyncIterator[AssistantMessageEvent]: ...

    async def __anext__(self) -> AssistantMessageEvent: ...

    def result(self) -> Awaitable[AssistantMessage]: ...


StreamFn: TypeAlias = Callable[[Model, Context, SimpleStreamOptions], Awaitable[StreamResponse]]


# --------------------------------------------------------------------------------------------
# Agent events and type guards (docs/events.md#agent-events)
# --------------------------------------------------------------------------------------------


@dataclass
class AgentStartEvent:
    type: Literal["agent_start"] = "agent_start"


@dataclass
class AgentEndEvent:
    type: Literal["agent_end"] = "agent_end"
    messages: list[AgentMessage] = field(default_factory=list)


@dataclass
class TurnStartEvent:
    type: Literal["turn_start"] = "turn_start"


@dataclass
class TurnEndEvent:
    type: Literal["turn_end"] = "turn_end"
    message: AgentMessage | None = None
    tool_results: list[ToolResultMessage] = field(default_factory=list)


@dataclass
class MessageStartEvent:
    type: Literal["message_start"] = "message_start"
    message: AgentMessage | None = None


@dataclass
class MessageUpdateEvent:
    type: Literal["message_update"] = "message_update"
    message: AgentMessage | None = None
    assistant_message_event: AssistantMessageEvent | None = None


@dataclass
class MessageEndEvent:
    type: Literal["message_end"] = "message_end"
    message: AgentMessage | None = None


@dataclass
class ToolExecutionStartEvent:
    type: Literal["tool_execution_start"] = "tool_execution_start"
    tool_call_id: str = ""
    tool_name: str = ""
    args: JsonObject | None = None


@dataclass
class ToolExecutionUpdateEvent:
    type: Literal["tool_execution_update"] = "tool_execution_update"
    tool_call_id: str = ""
    tool_name: str = ""
    args: JsonObject | None = None
    partial_result: AgentToolResult | None = None


@dataclass
class ToolExecutionEndEvent:
    type: Literal["tool_execution_end"] = "tool_execution_end"
    tool_call_id: str = ""
    tool_name: str = ""
    result: AgentToolResult | None = None
    is_error: bool = False
    args: JsonObject | None = None
    #: What the tool raised (traceback on ``__traceback__``), or the ``TypeError`` for a result of
    #: the wrong type; ``None`` when the call succeeded or failed without an exception.
    exception: BaseException | None = field(default=None, repr=False)


MessageEvent: TypeAlias = MessageStartEvent | MessageUpdateEvent | MessageEndEvent
ToolExecutionEvent: TypeAlias = (
    ToolExecutionStartEvent | ToolExecutionUpdateEvent | ToolExecutionEndEvent
)
AgentEvent: TypeAlias = (
    AgentStartEvent
    | AgentEndEvent
    | TurnStartEvent
    | TurnEndEvent
    | MessageStartEvent
    | MessageUpdateEvent
    | MessageEndEvent
    | ToolExecutionStartEvent
    | ToolExecutionUpdateEvent
    | ToolExecutionEndEvent
)


def is_agent_end_event(event: object) -> TypeGuard[AgentEndEvent]:
    return isinstance(event, AgentEndEvent)


def is_turn_end_event(event: object) -> TypeGuard[TurnEndEvent]:
    return isinstance(event, TurnEndEvent)


def is_message_start_or_update_event(
    event: object,
) -> TypeGuard[MessageStartEvent | MessageUpdateEvent]:
    return isinstance(event, (MessageStartEvent, MessageUpdateEvent))


def is_message_end_event(event: object) -> TypeGuard[MessageEndEvent]:
    return isinstance(event, MessageEndEvent)


def is_message_event(event: object) -> TypeGuard[MessageEvent]:
    return isinstance(event, (MessageStartEvent, MessageUpdateEvent, MessageEndEvent))


def is_tool_execution_start_event(event: object) -> TypeGuard[ToolExecutionStartEvent]:
    return isinstance(event, ToolExecutionStartEvent)


def is_tool_execution_end_event(event: object) -> TypeGuard[ToolExecutionEndEvent]:
    return isinstance(event, ToolExecutionEndEvent)


def is_tool_execution_event(event: object) -> TypeGuard[ToolExecutionEvent]:
    return isinstance(
        event, (ToolExecutionStartEvent, ToolExecutionUpdateEvent, ToolExecutionEndEvent)
    )


# --------------------------------------------------------------------------------------------
# Loop configuration (docs/events.md#run-structure, docs/events.md#llm-call)
# --------------------------------------------------------------------------------------------


@dataclass
class AgentLoopConfig:
    model: Model
    convert_to_llm: ConvertToLlmFn
    transform_context: TransformContextFn | None = None
    get_api_key: ApiKeyResolver | None = None
    get_steering_messages: AgentMessageProvider | None = None
    get_follow_up_messages: AgentMessageProvider | None = None
    before_tool_call: BeforeToolCallFn | None = None
    after_tool_call: AfterToolCallFn | None = None
    should_stop_after_turn: ShouldStopAfterTurnFn | None = None
    api_key: str | None = field(default=None, repr=False)
    temperature: float | None = None
    max_tokens: int | None = None
    session_id: str | None = None
    thinking_level: ThinkingLevel | None = None
    max_turns: int | None = 100

