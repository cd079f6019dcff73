"""Provider contract helpers of tiny-agent-os 1.2.28/1.2.29, kept for code that imports them.

The checks and types here are thin layers over ours: the usage check is the package's one
(``tinyagent._messages.check_usage``, the keys of :data:`~tinyagent.agent_types.ZERO_USAGE`), and
:class:`BindingStreamResponseBase` is an :class:`~tinyagent.alchemy_provider.AlchemyStreamResponse`,
so a response built on it gets the Rust core's batched event path, cancellation and scrubbing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, InitVar, dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from tinyagent._messages import check_usage
from tinyagent._provider_routing import MASK
from tinyagent.agent_types import (
    AssistantMessage,
    JsonObject,
    Model,
    ReasoningEffort,
    ReasoningMode,
)
from tinyagent.alchemy_provider import AlchemyStreamResponse, OpenAICompatModel

__all__ = [
    "BindingStreamHandle",
    "BindingStreamResponseBase",
    "ProviderMetadataModel",
    "ReasoningEffort",
    "ReasoningMode",
    "ResolvedModelMetadata",
    "dump_model_payload",
    "missing_keys",
    "resolve_model_metadata",
    "validate_assistant_message_contract",
    "validate_usage_contract",
]

_METADATA_FIELDS = ("name", "headers", "context_window", "max_tokens", "reasoning")


class BindingStreamHandle(Protocol):
    """What a binding's stream handle offers at least: blocking ``next_event`` and ``result``."""

    def next_event(self) -> object | None: ...

    def result(self) -> object: ...


class ProviderMetadataModel(Model):
    """A :class:`~tinyagent.agent_types.Model` with the optional metadata providers accept."""

    name: str | None = None
    headers: dict[str, str] | None = None
    context_window: int = 128_000
    max_tokens: int = 4096
    reasoning: ReasoningMode = False

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Header values often carry credentials; the global rules keep them out of reprs.
        for name, value in super().__repr_args__():
            if name == "headers" and isinstance(value, dict):
                value = dict.fromkeys(value, MASK)
            yield name, value


@dataclass(frozen=True)
class ResolvedModelMetadata:
    name: str | None
    headers: dict[str, str] | None
    reasoning: ReasoningMode
    context_window: int | None
    max_tokens: int | None


@dataclass(eq=False, repr=False)
class BindingStreamResponseBase(AlchemyStreamResponse):
    """A ``StreamResponse`` over a binding handle, as a dataclass so subclasses can add defaults.

    The dataclass fields are those of 1.2.29; everything else is ``AlchemyStreamResponse``: a core
    handle is read in batches on the awaiting loop, any other handle from a worker thread. The
    keyword-only ``signal``, ``partial`` and ``scrub`` are what ``stream_rust_binding`` passes;
    they are not stored as fields.
    """

    _handle: BindingStreamHandle
    invalid_event_message: str
    _final_message: AssistantMessage | None = None
    _: KW_ONLY
    signal: InitVar[asyncio.Event | None] = None
    partial: InitVar[AssistantMessage | None] = None
    scrub: InitVar[Callable[[str], str] | None] = None

    def __post_init__(
        self,
        signal: asyncio.Event | None,
        partial: AssistantMessage | None,
        scrub: Callable[[str], str] | None,
    ) -> None:
        # The base initialiser resets the cached final message; a passed one must survive it.
        final = self._final_message
        AlchemyStreamResponse.__init__(
            self,
            self._handle,
            self.invalid_event_message,
            signal=signal,
            _partial=partial,
            _scrub=scrub,
        )
        self._final_message = final

    def __repr__(self) -> str:
        return AlchemyStreamResponse.__repr__(self).replace(
            "AlchemyStreamResponse", type(self).__name__, 1
        )


def missing_keys(data: dict[str, object], required: frozenset[str]) -> list[str]:
    """The keys of ``required`` absent from ``data``, sorted."""
    return sorted(required.difference(data))


def validate_usage_contract(raw_usage: object, *, where: str) -> JsonObject:
    """``raw_usage`` itself when it has every usage and cost key (presence only), else
    ``RuntimeError`` naming ``where`` and what is wrong (the package's one usage check)."""
    return check_usage(raw_usage, where)


def validate_assistant_message_contract(
    raw_message: object, *, where: str, require_usage: bool
) -> AssistantMessage:
    """An ``AssistantMessage`` from a message or dict (a bad dict raises pydantic's
    ``ValidationError``), its usage checked when ``require_usage``; anything else is a
    ``RuntimeError``."""
    if isinstance(raw_message, AssistantMessage):
        message = raw_message
    elif isinstance(raw_message, dict):
        message = AssistantMessage.model_validate(raw_message)
    else:
        raise RuntimeError(f"{where}: assistant message must be a dict")
    if require_usage:
        validate_usage_contract(message.usage, where=where)
    return message


def _carries_metadata(model: Model) -> bool:
    # In 1.2.29 OpenAICompatModel derived from ProviderMetadataModel; ours does not (pydantic
    # refuses virtual subclasses in isinstance), so it is recognised here explicitly.
    return isinstance(model, (ProviderMetadataModel, OpenAICompatModel))


def resolve_model_metadata(
    model: Model, *, context_window: int | None, max_tokens: int | None
) -> ResolvedModelMetadata:
    """The model's own metadata when it carries any, else ``None``/``False`` and the defaults."""
    if _carries_metadata(model):
        values = {name: getattr(model, name) for name in _METADATA_FIELDS}
        return ResolvedModelMetadata(**values)
    return ResolvedModelMetadata(
        name=None,
        headers=None,
        reasoning=False,
        context_window=context_window,
        max_tokens=max_tokens,
    )


def dump_model_payload(payload: BaseModel) -> dict[str, object]:
    """A payload model as the dict a provider boundary takes (``exclude_none``, global rules)."""
    return payload.model_dump(exclude_none=True)
