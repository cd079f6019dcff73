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

from tinyagent.agent_types import (
    AfterToolCallFn,
    AgentState,
    AgentTool,
    ApiKeyResolver,
    BeforeToolCallFn,
    ConvertToLlmFn,
    Model,
    ShouldStopAfterTurnFn,
    StreamFn,
    ThinkingBudgets,
    ThinkingLevel,
    TransformContextFn,
)

if TYPE_CHECKING:
    from tinyagent.agent import Agent

__all__ = ["AgentConfig"]

_MODEL_FIELDS = ("id", "provider", "api", "base_url", "reasoning", "compat", "extra_body", "name")


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    model: Model
    system_prompt: str = ""
    tools: tuple[AgentTool, ...] = ()
    thinking_level: ThinkingLevel = ThinkingLevel.OFF
    convert_to_llm: ConvertToLlmFn | None = None
    transform_context: TransformContextFn | None = None
    steering_mode: str = "one-at-a-time"
    follow_up_mode: str = "one-at-a-time"
    stream_fn: StreamFn | None = None
    session_id: str | None = None
    get_api_key: ApiKeyResolver | None = None
    thinking_budgets: ThinkingBudgets | None = None
    enable_prompt_caching: bool = False
    before_tool_call: BeforeToolCallFn | None = None
    after_tool_call: AfterToolCallFn | None = None
    should_stop_after_turn: ShouldStopAfterTurnFn | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_turns: int | None = 100

    @classmethod
    def from_agent(cls, agent: Agent) -> AgentConfig:
        state = agent.state
        if state.model is None:
            raise RuntimeError("No model configured: call agent.set_model(...) before a batch")
        return cls(
            model=state.model.model_copy(),
            system_prompt=state.system_prompt,
            tools=tuple(state.tools),
            thinking_level=state.thinking_level,
            convert_to_llm=agent.convert_to_llm,
            transform_context=agent.transform_context,
            steering_mode=agent.get_steering_mode(),
            follow_up_mode=agent.get_follow_up_mode(),
            stream_fn=agent.stream_fn,
            session_id=agent.session_id,
            get_api_key=agent.get_api_key,
            thinking_budgets=agent.thinking_budgets,
            enable_prompt_caching=agent.enable_prompt_caching,
            before_tool_call=agent.before_tool_call,
            after_tool_call=agent.after_tool_call,
            should_stop_after_turn=agent.should_stop_after_turn,
            temperature=agent.temperature,
            max_tokens=agent.max_tokens,
            max_turns=agent.max_turns,
        )

    def replace(self, **changes: Any) -> AgentConfig:
        return dataclasses.replace(self, **changes)

    def new_agent(self, stream_fn: StreamFn | None = None) -> Agent:
        """A fresh Agent with this configuration and an empty history."""
        from tinyagent.agent import Agent, AgentOptions

        state = AgentState(
            system_prompt=self.system_prompt,
            model=self.model,
            thinking_level=self.thinking_level,
            tools=list(self.tools),
        )
        return Agent(
            AgentOptions(
                initial_state=state,
                convert_to_llm=self.convert_to_llm,
                transform_context=self.transform_context,
                steering_mode=self.steering_mode,
                follow_up_mode=self.follow_up_mode,
                stream_fn=stream_fn if stream_fn is not None else self.stream_fn,
                session_id=self.session_id,
                get_api_key=self.get_api_key,
                thinking_budgets=self.thinking_budgets,
                enable_prompt_caching=self.enable_prompt_caching,
                before_tool_call=self.before_tool_call,
                after_tool_call=self.after_tool_call,
                should_stop_after_turn=self.should_stop_after_turn,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                max_turns=self.max_turns,
            )
        )

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
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "max_turns": self.max_turns,
            "extra": extra,
        }
        text = json.dumps(payload, sort_keys=True, default=repr, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
