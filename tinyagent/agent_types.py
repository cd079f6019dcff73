"""The types every part of tinyagent speaks: messages, content blocks, models, options, tools,
the provider's ``AssistantMessageEvent``, the ten agent events and ``EventStream``.

Names, fields and defaults follow the tiny-agent-os 1.2.29 public API (docs/architecture.md#types,
docs/events.md). Models allow extra keys and skip validation on assignment, as the old package did,
so user code that attaches its own attributes keeps working. The messages, their blocks and the JSON
aliases are defined in ``_messages`` and ``EventStream`` in ``_event_stream``; every name is
importable from here as in 1.2.29.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeAlias, TypeGuard, TypeVar

from pydantic import Field

# EventStream lives in its own module; the 1.2.29 API names it here
# (docs/architecture.md#public-api).
from ._event_stream import EventStream as EventStream
from ._event_stream import EventStreamQueueItem as EventStreamQueueItem
from ._tool_functions import as_async_execute

# Messages and their blocks live in their own module; the 1.2.29 API names them here, each as
# `X as X` so type checkers see them re-exported (isort would give every name its own import).
# isort: off
from ._messages import (
    JsonPrimitive as JsonPrimitive,
    JsonValue as JsonValue,
    JsonObject as JsonObject,
    ZERO_USAGE as ZERO_USAGE,
    new_zero_usage as new_zero_usage,
    now_ms as now_ms,
    ModelDumpable as ModelDumpable,
    dump_model_dumpable as dump_model_dumpable,
    CacheControl as CacheControl,
    TextContent as TextContent,
    ImageContent as ImageContent,
    ThinkingContent as ThinkingContent,
    ToolCallContent as ToolCallContent,
    ToolCall as ToolCall,
    AssistantContent as AssistantContent,
    StopReason as StopReason,
    STOP_REASONS as STOP_REASONS,
    UserMessage as UserMessage,
    AssistantMessage as AssistantMessage,
    ToolResultMessage as ToolResultMessage,
    CustomAgentMessage as CustomAgentMessage,
    Message as Message,
    AgentMessage as AgentMessage,
    _Model,
)
# isort: on

T = TypeVar("T")
R = TypeVar("R")

# --------------------------------------------------------------------------------------------
# Callback aliases and thinking settings
# --------------------------------------------------------------------------------------------

MaybeAwaitable: TypeAlias = T | Awaitable[T]


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
