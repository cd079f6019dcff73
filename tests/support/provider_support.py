"""Helpers for the provider tests that stand in for the Rust core or drive a response directly."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable
from typing import Any

import pytest

from tinyagent import alchemy_provider as ap
from tinyagent.agent_types import AssistantMessageEvent, Context, SimpleStreamOptions
from tinyagent.alchemy_provider import AlchemyStreamResponse, OpenAICompatModel

LIVENESS = 3.0


def run(coro: Any) -> Any:
    """asyncio.run with a liveness bound: a hung stream fails the test instead of the suite."""
    return asyncio.run(asyncio.wait_for(coro, LIVENESS))


async def collect(response: AlchemyStreamResponse) -> list[AssistantMessageEvent]:
    return [event async for event in response]


def use_core(
    monkeypatch: pytest.MonkeyPatch,
    open_stream: Callable[[Any, Any, Any], Any],
    notifier: Any = None,
) -> None:
    """Make ``open_stream(model, context, options)`` the core's ``openai_completions_stream``
    through the ``_ALCHEMY_MODULE`` seam; ``notifier`` is the stand-in's ``Notifier`` (none: its
    handles are read from a thread)."""
    core = types.SimpleNamespace(openai_completions_stream=open_stream)
    if notifier is not None:
        core.Notifier = notifier
    monkeypatch.setattr(ap, "_ALCHEMY_MODULE", core)


async def local_stream() -> AlchemyStreamResponse:
    """A stream of a ``local`` model with an empty context, through whatever core is in use."""
    return await ap.stream_alchemy_openai_completions(
        OpenAICompatModel(provider="local"), Context(), SimpleStreamOptions()
    )
