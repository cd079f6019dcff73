"""A run that ends in an error reaches the person: ``prompt_text()`` raises ``AgentRunError`` with
the provider's message and a hint, ``prompt()`` and ``stream()`` keep returning the error message
and log it once on the ``tinyagent`` logger. Real Rust core, real loopback server."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
from support.agent_support import LIVENESS_SECONDS

from tinyagent import Agent, AgentOptions, AgentRunError, AssistantMessage
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.testing import Fault, ModelServer, Reply, ScriptedBrain

OPENROUTER = "https://openrouter.ai/api/v1/chat/completions"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, LIVENESS_SECONDS * 3))


def agent_for(url: str, provider: str = "demo", **model: Any) -> Agent:
    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
    agent.set_model(
        OpenAICompatModel(provider=provider, id="some-model", base_url=url, max_retries=0, **model)
    )
    return agent


def run_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tinyagent" and r.levelno == logging.ERROR]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_missing_key_raises_with_the_variable_to_set_and_the_demo_model(monkeypatch, caplog):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    agent = agent_for(OPENROUTER, provider="openrouter")
    with caplog.at_level(logging.ERROR, logger="tinyagent"):
        with pytest.raises(AgentRunError) as info:
            run(agent.prompt_text("What is the capital of France?"))
    err = info.value
    assert isinstance(err, RuntimeError)
    assert "No API key provided for provider: openrouter" in str(err)
    assert "OPENROUTER_API_KEY" in str(err) and "DemoBrain" in str(err)
    assert isinstance(err.message, AssistantMessage) and err.message.stop_reason == "error"
    assert err.message is agent.state.messages[-1]
    assert agent.state.error == err.error_message
    # the exception carries the error: no second copy in the log
    assert run_errors(caplog) == []


def test_http_404_hints_at_the_chat_completions_url():
    with ModelServer(ScriptedBrain([Reply(fault=Fault.http(404))])) as server:
        with pytest.raises(AgentRunError) as info:
            run(agent_for(server.url).prompt_text("hi"))
    text = str(info.value)
    assert "404" in text
    assert "base_url must be the full chat-completions URL" in text and server.url in text


def test_connection_refused_names_the_url_tried():
    url = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
    with pytest.raises(AgentRunError) as info:
        run(agent_for(url).prompt_text("hi"))
    assert "refused" in str(info.value).lower() and url in str(info.value)


def test_an_http_error_keeps_the_providers_message():
    brain = ScriptedBrain([Reply(fault=Fault.http(500))])
    with ModelServer(brain) as server:
        with pytest.raises(AgentRunError) as info:
            run(agent_for(server.url).prompt_text("hi"))
    assert "500" in str(info.value) and info.value.hint is None


def test_prompt_returns_the_error_message_and_logs_it_once(caplog):
    with ModelServer(ScriptedBrain([Reply(fault=Fault.http(500))])) as server:
        agent = agent_for(server.url)
        with caplog.at_level(logging.ERROR, logger="tinyagent"):
            reply = run(agent.prompt("hi"))
    assert reply.stop_reason == "error" and "500" in reply.error_message
    (record,) = run_errors(caplog)
    assert reply.error_message in record.getMessage()


def test_stream_keeps_its_events_and_logs_once(caplog):
    async def collect(agent: Agent) -> list[Any]:
        return [event async for event in agent.stream("hi")]

    with ModelServer(ScriptedBrain([Reply(fault=Fault.http(503))])) as server:
        agent = agent_for(server.url)
        with caplog.at_level(logging.ERROR, logger="tinyagent"):
            events = run(collect(agent))
    assert events[-1].type == "agent_end"
    final = [e.message for e in events if e.type == "message_end"][-1]
    assert final.stop_reason == "error"
    (record,) = run_errors(caplog)
    assert final.error_message in record.getMessage()


def test_a_good_run_and_a_stopped_run_neither_raise_nor_log(caplog):
    slow = Reply(text="word " * 200, chunk_chars=5, delay=0.01)
    with ModelServer(ScriptedBrain(["Paris.", slow])) as server:
        agent = agent_for(server.url)
        with caplog.at_level(logging.ERROR, logger="tinyagent"):
            assert run(agent.prompt_text("capital?")) == "Paris."

            def stop_on_first_delta(event: Any) -> None:
                if event.type == "message_update":
                    agent.abort()

            agent.subscribe(stop_on_first_delta)
            partial = run(agent.prompt_text("talk"))
    assert agent.state.messages[-1].stop_reason == "aborted"
    assert partial.startswith("word") or partial == ""
    assert run_errors(caplog) == []


def test_the_agent_is_usable_after_an_error():
    with ModelServer(ScriptedBrain([Reply(fault=Fault.http(500)), "Recovered."])) as server:
        agent = agent_for(server.url)
        with pytest.raises(AgentRunError):
            run(agent.prompt_text("first"))
        assert run(agent.prompt_text("again")) == "Recovered."
