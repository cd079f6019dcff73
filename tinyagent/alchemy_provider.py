"""The built-in provider: ``OpenAICompatModel`` and ``stream_alchemy_openai_completions``.

Python decides routing (provider, api, URL, key, reasoning; docs/architecture.md#routing), checks
what the wire cannot carry before any network activity, and hands plain dicts to the Rust core
``tinyagent._alchemy`` (docs/architecture.md#payload), which owns the HTTP/SSE transport. The
handle comes back wrapped in an :class:`AlchemyStreamResponse` (:mod:`tinyagent._stream_response`,
re-exported here), whose events arrive through the asyncio bridge of :mod:`tinyagent._bridge`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from pydantic import model_validator

from tinyagent._bridge import Notifier, scrubbed_exception
from tinyagent._provider_routing import (
    ANTHROPIC_MESSAGES,
    DEFAULT_OPENAI_COMPAT_CHAT_COMPLETIONS_URL,
    MASK,
    build_context_dict,
    canonical_api,
    credential_headers,
    default_base_url,
    infer_api,
    make_scrubber,
    reasoning_effort,
    resolve_api_key,
)
from tinyagent._stream_response import AlchemyStreamResponse
from tinyagent.agent_types import (
    AssistantMessage,
    Context,
    Model,
    ReasoningEffort,
    ReasoningMode,
    SimpleStreamOptions,
    now_ms,
)

__all__ = [
    "DEFAULT_OPENAI_COMPAT_CHAT_COMPLETIONS_URL",
    "AlchemyStreamResponse",
    "OpenAICompatModel",
    "ReasoningEffort",
    "ReasoningMode",
    "stream_alchemy_openai_completions",
]

logger = logging.getLogger("tinyagent.alchemy_provider")

#: Test seam (docs/architecture.md#public-api): when set, used instead of importing
#: ``tinyagent._alchemy``.
_ALCHEMY_MODULE: Any = None


class OpenAICompatModel(Model):
    """An OpenAI-compatible chat-completions model (or, experimentally, Anthropic/Kimi)."""

    provider: str = "openrouter"
    id: str = "moonshotai/kimi-k2.5"
    api: str = ""  # inferred from the provider at construction when not passed
    base_url: str = ""  # chosen by provider (and api) at construction when not passed
    """The endpoint, or an SDK-style base (``…/v1``) the core appends ``/chat/completions`` to; the
    API root on anthropic-messages. A loopback/private-network URL needs no key (README)."""
    name: str | None = None
    headers: dict[str, str] | None = None
    context_window: int = 128_000
    max_tokens: int = 4096  # metadata; sent only when set explicitly (model_fields_set)
    reasoning: ReasoningMode = False
    compat: dict[str, bool | str] | None = None
    connect_timeout: float | None = None
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None
    max_retries: int | None = None
    extra_body: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _fill_route_defaults(self) -> OpenAICompatModel:
        # Written to __dict__ directly so the inferred values do not count as explicitly set.
        slots = self.__dict__
        if "api" not in self.model_fields_set:
            slots["api"] = infer_api(self.provider)
        if "base_url" not in self.model_fields_set:
            slots["base_url"] = default_base_url(self.provider, _canonical_api(self))
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "headers" and isinstance(value, dict):
                value = dict.fromkeys(value, MASK)
            yield name, value


# --------------------------------------------------------------------------------------------
# Routing (docs/architecture.md#routing)
# --------------------------------------------------------------------------------------------


def _canonical_api(model: Model) -> str:
    return canonical_api(model.api, _route_provider(model))


def _route_provider(model: Model) -> str:
    return str(model.provider or "").strip() or "openai"


def _route_base_url(model: Model, provider: str, api: str) -> str:
    missing = object()
    raw = getattr(model, "base_url", missing)  # a plain Model may carry it as an extra field
    if raw is missing:
        return default_base_url(provider, api)
    if (
        isinstance(model, OpenAICompatModel)
        and not raw
        and "base_url" not in model.model_fields_set
    ):
        return default_base_url(provider, api)  # built without validation (model_construct)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("Model `base_url` must be a non-empty string")
    return raw.strip()


def _route_reasoning(model: Model, options: SimpleStreamOptions) -> ReasoningMode:
    own = model.reasoning if isinstance(model, OpenAICompatModel) else False
    if own is not False:
        return own
    from_options = reasoning_effort(options.reasoning)
    if from_options is not None:
        return cast(ReasoningEffort, from_options)
    from_level = reasoning_effort(model.thinking_level)
    if from_level is not None:
        return cast(ReasoningEffort, from_level)
    return False


def build_model_dict(model: Model, options: SimpleStreamOptions) -> dict[str, Any]:
    provider = _route_provider(model)
    api = _canonical_api(model)
    payload: dict[str, Any] = {
        "id": model.id,
        "provider": provider,
        "api": api,
        "base_url": _route_base_url(model, provider, api),
        "name": None,
        "headers": None,
        "reasoning": _route_reasoning(model, options),
        "context_window": None,
        "max_tokens": None,
    }
    if isinstance(model, OpenAICompatModel):
        payload["name"] = model.name
        payload["headers"] = dict(model.headers) if model.headers is not None else None
        payload["context_window"] = model.context_window
        if "max_tokens" in model.model_fields_set:
            payload["max_tokens"] = model.max_tokens
        if model.compat is not None:
            payload["compat"] = dict(model.compat)
    return payload


def build_options_dict(
    model: Model, options: SimpleStreamOptions, api_key: str | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "api_key": api_key,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
    }
    if options.session_id is not None:
        payload["session_id"] = options.session_id
    if options.headers is not None:
        payload["headers"] = dict(options.headers)
    for name in ("max_retries", "connect_timeout", "first_byte_timeout", "idle_timeout"):
        value = getattr(options, name, None)
        if value is None:
            value = getattr(model, name, None) if isinstance(model, OpenAICompatModel) else None
        if value is not None:
            payload[name] = value
    extra_body = model.extra_body if isinstance(model, OpenAICompatModel) else None
    if extra_body is not None:
        payload["extra_body"] = dict(extra_body)
    return payload


_experimental_warned = False


def _warn_experimental_once(provider: str) -> None:
    global _experimental_warned
    if not _experimental_warned:
        _experimental_warned = True
        logger.warning(
            "provider %r uses the experimental anthropic-messages path (alchemy-llm's own "
            "transport): no prompt caching, lossy error reporting, no connect timeout",
            provider,
        )


def _load_core() -> Any:
    if _ALCHEMY_MODULE is not None:
        return _ALCHEMY_MODULE
    try:
        from tinyagent import _alchemy  # type: ignore[attr-defined]
    except ImportError as exc:
        raise RuntimeError(
            "tinyagent._alchemy (the Rust streaming core) is not importable; reinstall "
            "tiny-agent-os from a wheel or build it with `pip install -e .`"
        ) from exc
    return _alchemy


#: The model, context and options dicts of one ``openai_completions_stream`` call.
Payloads = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class CoreStream:
    """A stream started on the core, with what its response is built from."""

    handle: Any
    partial: AssistantMessage
    scrub: Callable[[str], str]
    signal: asyncio.Event | None
    notifier_factory: Callable[[], Notifier] | None


def start_core_stream(
    model: Model,
    context: Context,
    options: SimpleStreamOptions | None,
    route: Callable[[Model, SimpleStreamOptions], dict[str, Any]] = build_model_dict,
    check: Callable[[Payloads], Payloads] | None = None,
) -> CoreStream:
    """Start one stream on the Rust core (docs/architecture.md#payload).

    The model dict comes from ``route`` (this module's routing by default), the context and
    options dicts from the shared builders; ``check`` may validate or reshape the three before
    they are sent (``rust_binding_provider``'s typed payloads). Then the experimental-path warning,
    a scrubber over the key and credential headers, the call, a start failure re-raised scrubbed,
    and the stream's empty partial.
    """
    if options is None:
        options = SimpleStreamOptions()
    core = _load_core()
    model_dict = route(model, options)
    api, provider = model_dict["api"], model_dict["provider"]
    context_dict = build_context_dict(context, api)
    api_key = resolve_api_key(provider, options)
    payloads = (model_dict, context_dict, build_options_dict(model, options, api_key))
    if check is not None:
        payloads = check(payloads)
    if api == ANTHROPIC_MESSAGES:
        _warn_experimental_once(provider)
    headers = model_dict.get("headers")
    scrub = make_scrubber([api_key, *credential_headers(headers, options.headers)])
    try:
        handle = core.openai_completions_stream(*payloads)
    except Exception as exc:
        clean = scrubbed_exception(exc, scrub)
        if clean is exc:
            raise
        raise clean from None
    partial = AssistantMessage(
        content=[],
        stop_reason="stop",
        timestamp=now_ms(),
        api=api,
        provider=provider,
        model=model.id,
    )
    return CoreStream(handle, partial, scrub, options.signal, getattr(core, "Notifier", None))


async def stream_alchemy_openai_completions(
    model: Model, context: Context, options: SimpleStreamOptions
) -> AlchemyStreamResponse:
    """Start one streamed completion on the Rust core and return its response."""
    started = start_core_stream(model, context, options)
    return AlchemyStreamResponse(
        _handle=started.handle,
        signal=started.signal,
        _notifier_factory=started.notifier_factory,
        _partial=started.partial,
        _scrub=started.scrub,
    )
