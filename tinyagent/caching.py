"""Prompt-cache breakpoints (docs/architecture.md#caching, docs/wire.md#cache-markers).

``add_cache_breakpoints`` marks user messages for Anthropic-style prompt caching. It never mutates
what it is given: marked messages are deep copies, so ``Agent.state.messages`` stays clean, and
when nothing needs a marker the very same list comes back.
"""

from __future__ import annotations

import asyncio

from .agent_types import AgentMessage, CacheControl, TextContent, UserMessage

__all__ = ["EPHEMERAL_CACHE", "add_cache_breakpoints"]

# model_construct: no validator is built at import time (the value is known to be valid).
EPHEMERAL_CACHE = CacheControl.model_construct(type="ephemeral")


async def add_cache_breakpoints(
    messages: list[AgentMessage], signal: asyncio.Event | None = None
) -> list[AgentMessage]:
    """Set ``cache_control`` on the last block of every user message that ends with text.

    Returns a new list when a marker was added, else ``messages`` itself.
    """
    result: list[AgentMessage] | None = None
    for index, message in enumerate(messages):
        if not isinstance(message, UserMessage) or not message.content:
            continue
        last = message.content[-1]
        if not isinstance(last, TextContent) or _is_ephemeral(last.cache_control):
            continue
        marked = message.model_copy(deep=True)
        marked_last = marked.content[-1]
        assert isinstance(marked_last, TextContent)
        marked_last.cache_control = EPHEMERAL_CACHE.model_copy()
        if result is None:
            result = list(messages)
        result[index] = marked
    return messages if result is None else result


def _is_ephemeral(control: CacheControl | None) -> bool:
    return control is not None and control.type == "ephemeral"
