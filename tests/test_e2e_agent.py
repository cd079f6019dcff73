"""End to end: Agent + stream_alchemy_openai_completions (the Rust core) + the loopback server.

The seed README's quickstart and ``sum`` tool examples against the demo model, prompt-cache
markers and session id on the wire, Agent-level output controls, both shapes of tool-result images
(``compat.supports_tool_result_images``), abort closing the connection, and the fault matrix at
Agent level (every failure is a message, exactly one ``agent_end``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.agent_support import LIVENESS_SECONDS, Recorder

from tinyagent import (
    Agent,
    AgentOptions,
    AgentTool,
    AgentToolResult,
    ImageContent,
    TextContent,
    ThinkingLevel,
)
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.testing import DemoBrain, Fault, ModelServer, Reply, ScriptedBrain, ToolCallSpec


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, LIVENESS_SECONDS))


async def calculate_sum(
    tool_call_id: str, args: dict, signal: Any, on_update: Any
) -> AgentToolResult:
    result = args["a"] + args["b"]
    return AgentToolResult(content=[TextContent(text=str(result))])


SUM_TOOL = AgentTool(
    name="sum",
    description="Add two numbers",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
    execute=calculate_sum,
)


def readme_agent(url: str, **options: Any) -> tuple[Agent, Recorder]:
    """The README quickstart, pointed at the loopback server instead of OpenRouter."""
    agent = Agent(
        AgentOptions(
            stream_fn=stream_alchemy_openai_completions,
            session_id="my-session",
            get_api_key=lambda provider: (
                "sk-or-test-key"
            ),  # OpenRouter needs a key; the server none
            **options,
        )
    )
    agent.set_system_prompt("You are a helpful assistant.")
    agent.set_model(
        OpenAICompatModel(
            provider="openrouter", id="anthropic/claude-3.5-sonnet", base_url=url, max_retries=0
        )
    )
    recorder = Recorder()
    agent.subscribe(recorder)
    return agent, recorder


def test_readme_quickstart_on_the_demo_model():
    with ModelServer(DemoBrain()) as server:
        agent, recorder = readme_agent(server.url)
        response = run(agent.prompt_text("What is the capital of France?"))
        body = server.requests[0].body
    assert "What is the capital of France?" in response
    assert "offline demo model" in response
    assert recorder.labels[0] == "agent_start" and recorder.labels[-1] == "agent_end"
    assert "upd[text_delta]+" in recorder.labels
    assert body["stream"] is True and body["session_id"] == "my-session"
    assert body["messages"][0]["role"] == "system"
    assert [m.role for m in agent.state.messages] == ["user", "assistant"]


def test_readme_sum_tool_on_the_demo_model():
    with ModelServer(DemoBrain()) as server:
        agent, recorder = readme_agent(server.url)
        agent.set_tools([SUM_TOOL])
        answer = run(agent.prompt_text("Use sum to add 2 and 3"))
        second_request = server.requests[1].messages
    assert '"5"' in answer
    assert [m.role for m in agent.state.messages] == [
        "user",
        "assistant",
        "tool_result",
        "assistant",
    ]
    assert agent.state.messages[2].content[0].text == "5"
    assert second_request[-1]["role"] == "tool" and second_request[-1]["content"] == "5"
    assert (
        recorder.labels.count("tool_execution_start")
        == recorder.labels.count("tool_execution_end")
        == 1
    )


def test_cache_markers_and_output_controls_reach_the_wire():
    with ModelServer(DemoBrain()) as server:
        agent, _ = readme_agent(
            server.url, enable_prompt_caching=True, temperature=0.25, max_tokens=321
        )
        agent.set_thinking_level(ThinkingLevel.LOW)
        run(agent.prompt_text("first question"))
        run(agent.prompt_text("second question"))
        bodies = [r.body for r in server.requests]
        first_headers = server.requests[0].headers
    second = bodies[1]
    users = [m for m in second["messages"] if m["role"] == "user"]
    assert all(m["content"][-1]["cache_control"] == {"type": "ephemeral"} for m in users)
    assert second["temperature"] == 0.25
    assert 321 in (second.get("max_tokens"), second.get("max_completion_tokens"))
    assert second["reasoning_effort"] == "low"
    assert first_headers.get("authorization") == "Bearer sk-or-test-key"
    # The Agent's own history never carries markers.
    assert all(
        b.cache_control is None for m in agent.state.messages if m.role == "user" for b in m.content
    )


SHOT_URL = "data:image/png;base64,iVBORw0KGgo="


async def take_screenshot(
    tool_call_id: str, args: dict, signal: Any, on_update: Any
) -> AgentToolResult:
    return AgentToolResult(
        content=[
            TextContent(text="the login page"),
            ImageContent(url=SHOT_URL, mime_type="image/png"),
        ]
    )


SHOT_TOOL = AgentTool(
    name="screenshot",
    description="Capture the screen",
    parameters={"type": "object", "properties": {}},
    execute=take_screenshot,
)


@pytest.mark.parametrize("inline", [False, True], ids=["default", "supports_tool_result_images"])
def test_tool_result_images_reach_the_wire_in_the_shape_the_compat_flag_asks(inline: bool):
    shot_call = ToolCallSpec("screenshot", {}, id="call_shot")
    brain = ScriptedBrain([Reply(tool_calls=[shot_call]), Reply(text="I see a login page.")])
    with ModelServer(brain) as server:
        agent, _ = readme_agent(server.url)
        agent.set_tools([SHOT_TOOL])
        if inline:
            agent.state.model.compat = {"supports_tool_result_images": True}  # type: ignore[union-attr]
        answer = run(agent.prompt_text("What is on the screen?"))
        after_tool = server.requests[1].messages
    assert answer == "I see a login page."
    tool_index = next(k for k, m in enumerate(after_tool) if m["role"] == "tool")
    image = {"type": "image_url", "image_url": {"url": SHOT_URL}}
    if inline:
        assert after_tool[tool_index:] == [
            {
                "role": "tool",
                "tool_call_id": "call_shot",
                "content": [{"type": "text", "text": "the login page"}, image],
            }
        ]
    else:
        assert after_tool[tool_index:] == [
            {"role": "tool", "tool_call_id": "call_shot", "content": "the login page"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Images returned by tool screenshot (call_shot):"},
                    image,
                ],
            },
        ]


def test_abort_closes_the_connection():
    with ModelServer(
        ScriptedBrain([Reply(text="word " * 400, chunk_chars=5, delay=0.01)])
    ) as server:
        agent, recorder = readme_agent(server.url)

        def abort_on_first_delta(event: Any) -> None:
            if (
                event.type == "message_update"
                and event.assistant_message_event.type == "text_delta"
            ):
                agent.abort()

        agent.subscribe(abort_on_first_delta)
        reply = run(agent.prompt("talk for a while"))
        closed = server.requests[0].client_closed.wait(2)
    assert closed
    assert reply.stop_reason == "aborted" and reply.error_message == "Request was aborted"
    assert reply.content and reply.content[0].text.startswith("word")
    assert recorder.labels[-3:] == ["message_end", "turn_end", "agent_end"]
    assert len(server.requests) == 1


FAULTS = {
    "http_500": Reply(fault=Fault.http(500)),
    "drop_mid_stream": Reply(text="partial answer " * 5, fault=Fault.drop(after=3)),
    "malformed_chunk": Reply(text="some text here", fault=Fault.malformed(after=2)),
    "inband_error": Reply(text="some text here", fault=Fault.inband_error(after=2)),
    "event_error": Reply(text="some text here", fault=Fault.event_error(after=2)),
    "truncated": Reply(text="some text here", fault=Fault.truncate()),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_matrix_ends_runs_with_an_error_message(name):
    with ModelServer(ScriptedBrain([FAULTS[name]])) as server:
        agent, recorder = readme_agent(server.url)
        reply = run(agent.prompt("hello"))
    assert reply.stop_reason == "error", (name, reply)
    assert reply.error_message and agent.state.error == reply.error_message
    types = [e.type for e in recorder.events]
    assert types.count("agent_end") == 1 and types[-1] == "agent_end"
    assert types.count("message_start") == types.count("message_end")
    assert not agent.state.is_streaming


def test_idle_timeout_is_an_error_message_not_a_hang():
    with ModelServer(
        ScriptedBrain([Reply(text="some text", fault=Fault.stall(after=2))])
    ) as server:
        agent, _ = readme_agent(server.url)
        agent.state.model.idle_timeout = 0.3  # type: ignore[union-attr]
        reply = run(agent.prompt("hello"))
    assert reply.stop_reason == "error" and reply.error_message
