"""What the batch test modules share: an Agent on the loopback server, the prompt a request sent."""

from __future__ import annotations

from typing import Any

from tinyagent import Agent, AgentOptions
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions


def make_agent(url: str, **model: Any) -> Agent:
    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
    agent.set_model(OpenAICompatModel(provider="openai", id="batch-test", base_url=url, **model))
    return agent


def last_user(request: dict[str, Any]) -> str:
    content = request["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
