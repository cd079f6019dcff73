"""The public surface of docs/architecture.md#public-api (the agent core's modules): names and
signatures.

``alchemy_provider`` and ``_alchemy`` are pinned by their owners' tests.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import typing

import pytest

import tinyagent
from tinyagent import agent_types

TOP_LEVEL = [
    "Agent", "AgentOptions", "default_convert_to_llm", "extract_text",
    "agent_loop", "agent_loop_continue", "create_agent_stream", "stream_assistant_response", "stream_simple",
    "execute_tool_calls", "skip_tool_call", "validate_tool_arguments",
    "ThinkingLevel", "TextContent", "ImageContent", "ToolCall", "ToolCallContent", "UserMessage",
    "AssistantMessage", "ToolResultMessage", "CustomAgentMessage", "Message", "AgentMessage",
    "AgentToolResult", "ToolLoopControl", "Tool", "AgentTool", "AgentToolUpdateCallback", "Context",
    "AgentContext", "Model", "SimpleStreamOptions", "AssistantMessageEvent", "StreamResponse",
    "AgentStartEvent", "AgentEndEvent", "TurnStartEvent", "TurnEndEvent", "MessageStartEvent",
    "MessageUpdateEvent", "MessageEndEvent", "ToolExecutionStartEvent", "ToolExecutionUpdateEvent",
    "ToolExecutionEndEvent", "AgentEvent", "AgentLoopConfig", "AgentState", "EventStream", "StreamFn",
    "BeforeToolCallFn", "AfterToolCallFn", "ShouldStopAfterTurnFn",
    "ProxyStreamOptions", "ProxyStreamResponse", "stream_proxy", "create_proxy_stream", "parse_streaming_json",
]  # fmt: skip

MODULE_NAMES = {
    "tinyagent.agent_types": [
        "JsonPrimitive", "JsonValue", "JsonObject", "ZERO_USAGE", "ModelDumpable", "dump_model_dumpable",
        "MaybeAwaitable", "ThinkingLevel", "ThinkingBudgets", "CacheControl", "TextContent", "ImageContent",
        "ThinkingContent", "ToolCallContent", "ToolCall", "AssistantContent", "UserMessage", "AssistantMessage",
        "ToolResultMessage", "CustomAgentMessage", "Message", "AgentMessage", "StopReason", "STOP_REASONS",
        "Model", "SimpleStreamOptions", "AgentState", "ConvertToLlmFn", "TransformContextFn", "ApiKeyResolver",
        "AgentMessageProvider", "AgentToolResult", "ToolLoopControl", "AgentToolUpdateCallback", "Tool",
        "AgentTool", "Context", "AgentContext", "BeforeToolCallFn", "AfterToolCallFn", "ShouldStopAfterTurnFn",
        "StreamFn", "StreamResponse", "AssistantMessageEvent", "STREAM_UPDATE_EVENTS", "AgentStartEvent",
        "AgentEndEvent", "TurnStartEvent", "TurnEndEvent", "MessageStartEvent", "MessageUpdateEvent",
        "MessageEndEvent", "ToolExecutionStartEvent", "ToolExecutionUpdateEvent", "ToolExecutionEndEvent",
        "AgentEvent", "MessageEvent", "ToolExecutionEvent", "is_agent_end_event", "is_turn_end_event",
        "is_message_start_or_update_event", "is_message_end_event", "is_message_event",
        "is_tool_execution_start_event", "is_tool_execution_end_event", "is_tool_execution_event",
        "AgentLoopConfig", "EventStream", "EventStreamQueueItem",
    ],
    "tinyagent.agent": [
        "Agent", "AgentOptions", "default_convert_to_llm", "extract_text", "ConvertToLlmCallback",
        "TransformContextCallback", "ApiKeyResolverCallback", "AgentRunError",
    ],
    "tinyagent.agent_loop": [
        "agent_loop", "agent_loop_continue", "stream_assistant_response", "stream_simple",
        "create_agent_stream", "run_loop", "ResponseStreamState", "TurnProcessingResult", "StreamEventHandler",
    ],
    "tinyagent.agent_tool_execution": [
        "ToolExecutionResult", "validate_tool_arguments", "ToolArgumentsError", "execute_tool_calls",
        "skip_tool_call",
    ],
    "tinyagent.caching": ["EPHEMERAL_CACHE", "add_cache_breakpoints"],
    "tinyagent.proxy": [
        "ProxyStreamOptions", "ProxyStreamResponse", "stream_proxy", "create_proxy_stream", "create_proxy_stream_fn",
    ],
    "tinyagent.proxy_event_handlers": ["parse_streaming_json", "process_proxy_event", "ProxyEventHandler"],
    # 1.2.28/1.2.29 compatibility modules
    "tinyagent.provider_contracts": [
        "BindingStreamHandle", "BindingStreamResponseBase", "ProviderMetadataModel", "ReasoningEffort",
        "ReasoningMode", "ResolvedModelMetadata", "dump_model_payload", "missing_keys", "resolve_model_metadata",
        "validate_assistant_message_contract", "validate_usage_contract",
    ],
    "tinyagent.rust_binding_provider": [
        "DEFAULT_BASE_URLS", "BindingApi", "BindingContextPayload", "BindingModelPayload", "BindingOptionsPayload",
        "BindingToolPayload", "ReasoningEffort", "ReasoningMode", "RustBindingModel", "RustBindingStreamResponse",
        "stream_rust_binding",
    ],
}  # fmt: skip


def test_top_level_all_is_the_old_list_in_order():
    assert tinyagent.__all__[: len(TOP_LEVEL)] == TOP_LEVEL
    for name in tinyagent.__all__:
        assert hasattr(tinyagent, name), name
    assert "add_cache_breakpoints" not in tinyagent.__all__


@pytest.mark.parametrize("module_name", sorted(MODULE_NAMES))
def test_module_names_exist(module_name):
    module = importlib.import_module(module_name)
    missing = [n for n in MODULE_NAMES[module_name] if not hasattr(module, n)]
    assert missing == []


def test_proxy_all_lists_exactly_its_names():
    import tinyagent.proxy

    assert sorted(tinyagent.proxy.__all__) == sorted(MODULE_NAMES["tinyagent.proxy"])


def test_top_level_names_are_the_submodule_objects():
    # ``tinyagent.agent_loop`` is the function (as in 1.2.29); the module is in sys.modules.
    agent = importlib.import_module("tinyagent.agent")
    loop_module = importlib.import_module("tinyagent.agent_loop")
    agent_tool_execution = importlib.import_module("tinyagent.agent_tool_execution")
    proxy = importlib.import_module("tinyagent.proxy")

    assert tinyagent.Agent is agent.Agent
    assert tinyagent.agent_loop is loop_module.agent_loop
    assert tinyagent.stream_assistant_response is loop_module.stream_assistant_response
    assert tinyagent.validate_tool_arguments is agent_tool_execution.validate_tool_arguments
    assert tinyagent.ProxyStreamResponse is proxy.ProxyStreamResponse
    assert agent_types.ToolCall is agent_types.ToolCallContent
    assert agent.ConvertToLlmCallback is agent_types.ConvertToLlmFn
    assert agent.TransformContextCallback is agent_types.TransformContextFn
    assert agent.ApiKeyResolverCallback is agent_types.ApiKeyResolver


def params(fn):
    return [(p.name, p.kind.name, p.default) for p in inspect.signature(fn).parameters.values()]


E = inspect.Parameter.empty
POS = "POSITIONAL_OR_KEYWORD"
KW = "KEYWORD_ONLY"


def test_loop_signatures():
    m = importlib.import_module("tinyagent.agent_loop")

    assert params(m.agent_loop) == [
        ("prompts", POS, E),
        ("context", POS, E),
        ("config", POS, E),
        ("signal", POS, None),
        ("stream_fn", POS, None),
    ]
    assert params(m.agent_loop_continue) == [
        ("context", POS, E),
        ("config", POS, E),
        ("signal", POS, None),
        ("stream_fn", POS, None),
    ]
    assert params(m.stream_assistant_response) == [
        ("context", POS, E),
        ("config", POS, E),
        ("signal", POS, E),
        ("stream", POS, E),
        ("stream_fn", POS, None),
    ]
    assert params(m.run_loop) == [
        ("current_context", POS, E),
        ("new_messages", POS, E),
        ("config", POS, E),
        ("signal", POS, E),
        ("stream", POS, E),
        ("stream_fn", POS, None),
    ]
    assert params(m.stream_simple) == [("model", POS, E), ("context", POS, E), ("options", POS, E)]
    assert params(m.create_agent_stream) == []
    for fn in (m.stream_assistant_response, m.run_loop, m.stream_simple):
        assert inspect.iscoroutinefunction(fn)
    assert not inspect.iscoroutinefunction(m.agent_loop)
    assert [f.name for f in dataclasses.fields(m.ResponseStreamState)] == [
        "partial_message",
        "added_partial",
    ]
    assert [f.name for f in dataclasses.fields(m.TurnProcessingResult)] == [
        "pending_messages", "has_more_tool_calls", "first_turn", "should_continue",
    ]  # fmt: skip


def test_tool_execution_signatures():
    from tinyagent import agent_tool_execution as m

    assert params(m.execute_tool_calls) == [
        ("tools", POS, E),
        ("assistant_message", POS, E),
        ("signal", POS, E),
        ("stream", POS, E),
        ("get_steering_messages", POS, None),
        ("before_tool_call", POS, None),
        ("after_tool_call", POS, None),
    ]
    assert params(m.validate_tool_arguments) == [("tool", POS, E), ("tool_call", POS, E)]
    assert params(m.skip_tool_call) == [("tool_call", POS, E), ("stream", POS, E)]
    assert issubclass(m.ToolArgumentsError, ValueError)
    result = m.ToolExecutionResult()
    assert (result.tool_results, result.steering_messages, result.terminate) == ([], None, False)


def test_caching_and_proxy_signatures():
    from tinyagent import caching, proxy, proxy_event_handlers

    assert params(caching.add_cache_breakpoints) == [("messages", POS, E), ("signal", POS, None)]
    assert caching.EPHEMERAL_CACHE.type == "ephemeral"
    assert params(proxy.create_proxy_stream) == [
        ("model", POS, E),
        ("context", POS, E),
        ("auth_token", POS, E),
        ("proxy_url", POS, E),
        ("temperature", KW, None),
        ("max_tokens", KW, None),
        ("reasoning", KW, None),
        ("signal", KW, None),
    ]
    assert params(proxy.create_proxy_stream_fn) == [
        ("proxy_url", POS, E),
        ("auth_token", POS, E),
        ("reasoning", KW, None),
    ]
    assert params(proxy.stream_proxy) == [
        ("model", POS, E),
        ("context", POS, E),
        ("options", POS, E),
    ]
    assert [f.name for f in dataclasses.fields(proxy.ProxyStreamOptions)] == [
        "auth_token",
        "proxy_url",
        "temperature",
        "max_tokens",
        "reasoning",
        "signal",
        "session_id",
        "timeout",
    ]
    assert all(
        p.kind.name == KW for p in inspect.signature(proxy.ProxyStreamResponse).parameters.values()
    )
    assert params(proxy_event_handlers.parse_streaming_json) == [("json_str", POS, E)]
    assert params(proxy_event_handlers.process_proxy_event) == [
        ("proxy_event", POS, E),
        ("partial", POS, E),
    ]


def test_agent_methods():
    from tinyagent import Agent

    for name in ("prompt", "prompt_text", "continue_", "wait_for_idle"):
        assert inspect.iscoroutinefunction(getattr(Agent, name)), name
    for name in ("stream", "stream_text"):
        assert inspect.isasyncgenfunction(getattr(Agent, name)), name
    # 1.2.29's parameters, in order; 2.0 adds only the keyword-only per-run ``options``
    assert params(Agent.prompt) == [
        ("self", POS, E),
        ("input", POS, E),
        ("images", POS, None),
        ("options", "KEYWORD_ONLY", None),
    ]
    for name in (
        "subscribe", "set_system_prompt", "set_model", "set_tools", "set_thinking_level", "set_steering_mode",
        "get_steering_mode", "set_follow_up_mode", "get_follow_up_mode", "replace_messages", "append_message",
        "steer", "follow_up", "clear_steering_queue", "clear_follow_up_queue", "clear_all_queues",
        "clear_messages", "abort", "reset",
    ):  # fmt: skip
        assert callable(getattr(Agent, name)), name
    agent = Agent()
    for attribute in (
        "stream_fn",
        "get_api_key",
        "temperature",
        "max_tokens",
        "max_turns",
        "enable_prompt_caching",
        "session_id",
        "thinking_budgets",
    ):
        before = getattr(agent, attribute)
        setattr(agent, attribute, before)
        assert getattr(agent, attribute) == before, attribute
    # The setters change the one state object in place (listeners may hold on to it).
    state = agent.state
    agent.set_system_prompt("be brief")
    agent.set_tools([])
    assert agent.state is state and state.system_prompt == "be brief"
    agent.max_turns = 7
    agent.set_model(agent_types.Model(provider="p", id="m"))
    assert agent._loop_config(agent.state.model).max_turns == 7


def test_type_shapes():
    assert [f.name for f in dataclasses.fields(agent_types.AgentLoopConfig)][-3:] == [
        "session_id",
        "thinking_level",
        "max_turns",
    ]
    assert agent_types.AgentLoopConfig.__dataclass_fields__["max_turns"].default == 100
    assert [f.name for f in dataclasses.fields(agent_types.AgentToolResult)] == [
        "content",
        "details",
        "terminate",
    ]
    assert [f.name for f in dataclasses.fields(agent_types.ToolLoopControl)] == [
        "terminate",
        "result",
        "is_error",
    ]
    assert [f.name for f in dataclasses.fields(agent_types.AgentTool)] == [
        "name",
        "description",
        "parameters",
        "label",
        "execute",
    ]
    assert set(typing.get_args(agent_types.StopReason)) == agent_types.STOP_REASONS
    assert agent_types.AgentStartEvent().type == "agent_start"
    assert agent_types.ToolExecutionEndEvent().is_error is False
    assert isinstance(agent_types.TextContent(), agent_types.ModelDumpable)
