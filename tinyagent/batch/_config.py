"""A snapshot of an Agent's configuration, to build one fresh Agent per row (and per attempt).

Everything ``Agent(AgentOptions(...))`` takes plus the state a run reads (model, system prompt,
tools, thinking level) — never the messages, the queues or the listeners, so rows share nothing
but the (stateless) tools and hooks the person wrote. The snapshot is taken once, when the batch
starts: changing the Agent afterwards does not change a running batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

from tinyagent.agent_types import AgentState, AgentTool, Model, StreamFn, ThinkingLevel

if TYPE_CHECKING:
    from tinyagent.agent import Agent, AgentOptions

__all__ = ["AgentConfig"]

_MODEL_FIELDS = ("id", "provider", "api", "base_url", "reasoning", "compat", "extra_body", "name")


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """What a row's Agent is built from: the state a run reads, and the Agent's ``AgentOptions``
    as they are when the batch starts (``initial_state`` unused: the state is the fields here)."""

    model: Model
    system_prompt: str = ""
    tools: tuple[AgentTool, ...] = ()
    thinking_level: ThinkingLevel = ThinkingLevel.OFF
    options: AgentOptions = dataclasses.field(default_factory=lambda: _default_options())

    @classmethod
    def from_agent(cls, agent: Agent) -> AgentConfig:
        from tinyagent.agent import AgentOptions

        state = agent.state
        if state.model is None:
            raise RuntimeError("No model configured: call agent.set_model(...) before a batch")
        read = {"steering_mode": agent.get_steering_mode, "follow_up_mode": agent.get_follow_up_mode}
        settings: dict[str, Any] = {
            f.name: read[f.name]() if f.name in read else getattr(agent, f.name)
            for f in dataclasses.fields(AgentOptions)
            if f.name != "initial_state"
        }
        return cls(
            model=state.model.model_copy(),
            system_prompt=state.system_prompt,
            tools=tuple(state.tools),
            thinking_level=state.thinking_level,
            options=AgentOptions(**settings),
        )

    def replace(self, **changes: Any) -> AgentConfig:
        """A copy with ``changes``: fields of this class, or of ``AgentOptions`` (temperature=…)."""
        own = {f.name for f in dataclasses.fields(self)}
        settings = {k: v for k, v in changes.items() if k not in own}
        if settings:
            changes = {k: v for k, v in changes.items() if k in own}
            changes["options"] = dataclasses.replace(self.options, **settings)
        return dataclasses.replace(self, **changes)

    def new_agent(self, stream_fn: StreamFn | None = None) -> Agent:
        """A fresh Agent with this configuration and an empty history."""
        from tinyagent.agent import Agent

        state = AgentState(
            system_prompt=self.system_prompt,
            model=self.model,
            thinking_level=self.thinking_level,
            tools=list(self.tools),
        )
        options = dataclasses.replace(self.options, initial_state=state)
        if stream_fn is not None:
            options.stream_fn = stream_fn
        return Agent(options)

    @property
    def stream_fn(self) -> StreamFn | None:
        return self.options.stream_fn


    def fingerprint(self, **extra: Any) -> str:
        """A hash of what decides a row's answer: the model's identity and request fields, the
        system prompt, the tools' names and schemas, the sampling settings, plus ``extra`` (the
        output schema, the prompt template). Hooks and functions cannot be hashed and are not
        part of it; keys and headers never are."""
        model = self.model
        described = {name: getattr(model, name, None) for name in _MODEL_FIELDS}
        payload = {
            "model": described,
            "system_prompt": self.system_prompt,
            "tools": [
                {"name": t.name, "description": t.description, "parameters": t.parameters}
                for t in self.tools
            ],
            "thinking_level": str(getattr(self.thinking_level, "value", self.thinking_level)),
            "temperature": self.options.temperature,
            "max_tokens": self.options.max_tokens,
            "max_turns": self.options.max_turns,
            "extra": extra,
        }
        text = json.dumps(payload, sort_keys=True, default=repr, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _default_options() -> AgentOptions:
    from tinyagent.agent import AgentOptions  # not at import: agent.py imports this package

    return AgentOptions()
