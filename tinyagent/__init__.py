"""tinyagent: a small LLM agent framework with a Rust streaming core.

The top-level names are the tiny-agent-os 1.2.29 public API, in its order
(docs/architecture.md#public-api).
The Rust-backed provider lives in ``tinyagent.alchemy_provider`` and is imported on demand only,
so ``import tinyagent`` works without the compiled extension.
"""

from typing import TYPE_CHECKING

from ._run_errors import AgentRunError
from ._run_options import RunOptions
from ._tool_functions import ToolError
from .agent import Agent, AgentOptions, default_convert_to_llm, extract_text
from .agent_loop import (
    agent_loop,
    agent_loop_continue,
    create_agent_stream,
    stream_assistant_response,
    stream_simple,
)
from .agent_tool_execution import execute_tool_calls, skip_tool_call, validate_tool_arguments
from .agent_types import (
    AfterToolCallFn,
    AgentContext,
    AgentEndEvent,
    AgentEvent,
    AgentLoopConfig,
    AgentMessage,
    AgentStartEvent,
    AgentState,
    AgentTool,
    AgentToolResult,
    AgentToolUpdateCallback,
    AssistantMessage,
    AssistantMessageEvent,
    BeforeToolCallFn,
    Context,
    CustomAgentMessage,
    EventStream,
    ImageContent,
    Message,
    MessageEndEvent,
    MessageStartEvent,
    MessageUpdateEvent,
    Model,
    ShouldStopAfterTurnFn,
    SimpleStreamOptions,
    StreamFn,
    StreamResponse,
    TextContent,
    ThinkingLevel,
    Tool,
    ToolCall,
    ToolCallContent,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    ToolExecutionUpdateEvent,
    ToolLoopControl,
    ToolResultMessage,
    TurnEndEvent,
    TurnStartEvent,
    UserMessage,
)
from .batch import BatchResult, BatchRow, Budget, arun_batch, run_batch

if TYPE_CHECKING:  # type checkers see the real names; at run time they load on first access
    from .proxy import ProxyStreamOptions, ProxyStreamResponse, create_proxy_stream, stream_proxy
    from .proxy_event_handlers import parse_streaming_json

# The proxy client pulls in httpx (and its TLS setup), which most programs never use: its names are
# loaded on first access, so ``import tinyagent`` stays fast.
_LAZY = {
    "ProxyStreamOptions": "proxy",
    "ProxyStreamResponse": "proxy",
    "create_proxy_stream": "proxy",
    "stream_proxy": "proxy",
    "parse_streaming_json": "proxy_event_handlers",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tinyagent' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__all__ = [
    # Agent
    "Agent",
    "AgentOptions",
    "default_convert_to_llm",
    "extract_text",
    # Loop
    "agent_loop",
    "agent_loop_continue",
    "create_agent_stream",
    "stream_assistant_response",
    "stream_simple",
    # Tool execution
    "execute_tool_calls",
    "skip_tool_call",
    "validate_tool_arguments",
    # Types
    "ThinkingLevel",
    "TextContent",
    "ImageContent",
    "ToolCall",
    "ToolCallContent",
    "UserMessage",
    "AssistantMessage",
    "ToolResultMessage",
    "CustomAgentMessage",
    "Message",
    "AgentMessage",
    "AgentToolResult",
    "ToolLoopControl",
    "Tool",
    "AgentTool",
    "AgentToolUpdateCallback",
    "Context",
    "AgentContext",
    "Model",
    "SimpleStreamOptions",
    "AssistantMessageEvent",
    "StreamResponse",
    "AgentStartEvent",
    "AgentEndEvent",
    "TurnStartEvent",
    "TurnEndEvent",
    "MessageStartEvent",
    "MessageUpdateEvent",
    "MessageEndEvent",
    "ToolExecutionStartEvent",
    "ToolExecutionUpdateEvent",
    "ToolExecutionEndEvent",
    "AgentEvent",
    "AgentLoopConfig",
    "AgentState",
    "EventStream",
    "StreamFn",
    "BeforeToolCallFn",
    "AfterToolCallFn",
    "ShouldStopAfterTurnFn",
    # Proxy
    "ProxyStreamOptions",
    "ProxyStreamResponse",
    "stream_proxy",
    "create_proxy_stream",
    "parse_streaming_json",
    # Added in 2.0
    "AgentRunError",
    "RunOptions",
    "ToolError",
    "run_batch",
    "arun_batch",
    "Budget",
    "BatchResult",
    "BatchRow",
]
