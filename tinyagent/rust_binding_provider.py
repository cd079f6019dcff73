"""The typed Rust-binding provider of tiny-agent-os 1.2.28/1.2.29, over our core.

``stream_rust_binding`` keeps that module's routing rules, which are stricter than
``stream_alchemy_openai_completions``'s (docs/architecture.md#routing): the provider and id must be
non-blank, an explicit ``api`` must be one the core dispatches (no legacy aliases), and a provider
outside :data:`DEFAULT_BASE_URLS` needs a ``base_url``. The payload is checked through the typed
payload models and then goes through the same Rust core, bridge and secret scrubbing as the built-in
provider. Like that provider it follows our deliberate changes (docs/architecture.md#differences):
the model's ``max_tokens`` caps output only when set explicitly, the thinking level is forwarded as
the reasoning effort, and the key comes from the full provider environment table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tinyagent import alchemy_provider
from tinyagent._provider_routing import (
    default_base_url,
    infer_api,
    reasoning_effort,
)
from tinyagent.agent_types import (
    Context,
    JsonObject,
    Model,
    ReasoningEffort,
    ReasoningMode,
    SimpleStreamOptions,
)
from tinyagent.provider_contracts import (
    BindingStreamResponseBase,
    ProviderMetadataModel,
    dump_model_payload,
    resolve_model_metadata,
)

__all__ = [
    "DEFAULT_BASE_URLS",
    "BindingApi",
    "BindingContextPayload",
    "BindingModelPayload",
    "BindingOptionsPayload",
    "BindingToolPayload",
    "ReasoningEffort",
    "ReasoningMode",
    "RustBindingModel",
    "RustBindingStreamResponse",
    "stream_rust_binding",
]

BindingApi: TypeAlias = Literal["anthropic-messages", "openai-completions", "minimax-completions"]
_BINDING_APIS: frozenset[str] = frozenset(get_args(BindingApi))

#: The providers this module routes without a ``base_url``, in 1.2.29's order. The URLs come from
#: our routing table, so they cannot disagree with ``OpenAICompatModel``'s defaults.
DEFAULT_BASE_URLS: dict[str, str] = {
    provider: default_base_url(provider, infer_api(provider))
    for provider in ("openai", "openrouter", "chutes", "minimax", "minimax-cn", "kimi")
}
# Our routing table sends unknown providers to OpenAI's URL (docs/architecture.md#routing): no
# Chutes entry. 1.2.29's binding provider knew Chutes' endpoint, and code relying on it keeps it.
DEFAULT_BASE_URLS["chutes"] = "https://llm.chutes.ai/v1/chat/completions"


class RustBindingModel(ProviderMetadataModel):
    """A model for :func:`stream_rust_binding`: ``api`` blank (inferred) or one the core
    dispatches, ``base_url`` blank (the provider default) or the endpoint."""

    provider: str = "openrouter"
    id: str = "moonshotai/kimi-k2.5"
    api: BindingApi | Literal[""] = ""
    base_url: str | None = None

    @field_validator("base_url")
    @classmethod
    def _blank_base_url_is_none(cls, value: str | None) -> str | None:
        # A blank URL means "the provider default", as an omitted one does.
        if value is None:
            return None
        return value.strip() or None


class _BindingPayloadModel(BaseModel):
    # Unknown keys are a bug in the caller, not something to pass to the core silently.
    model_config = ConfigDict(extra="forbid")


class BindingModelPayload(_BindingPayloadModel):
    """The model dict of ``tinyagent._alchemy.openai_completions_stream``
    (docs/architecture.md#core-surface)."""

    id: str
    provider: str
    api: BindingApi
    base_url: str
    name: str | None = None
    headers: dict[str, str] | None = Field(default=None, repr=False)
    reasoning: ReasoningMode = False
    context_window: int
    max_tokens: int | None = None  # 1.2.29 always sent one; ours only when set explicitly
    compat: dict[str, bool | str] | None = None


class BindingToolPayload(_BindingPayloadModel):
    name: str
    description: str
    parameters: JsonObject


class BindingContextPayload(_BindingPayloadModel):
    """The context dict of the core: system prompt, dumped messages, tools."""

    system_prompt: str = ""
    messages: list[dict[str, object]]
    tools: list[BindingToolPayload] | None = None


class BindingOptionsPayload(_BindingPayloadModel):
    """The options dict of the core; the keys after ``max_tokens`` are ours
    (docs/architecture.md#payload)."""

    api_key: str | None = Field(default=None, repr=False)
    temperature: float | None = None
    max_tokens: int | None = None
    session_id: str | None = None
    headers: dict[str, str] | None = Field(default=None, repr=False)
    max_retries: int | None = None
    connect_timeout: float | None = None
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None
    extra_body: dict[str, Any] | None = None


@dataclass(eq=False, repr=False)
class RustBindingStreamResponse(BindingStreamResponseBase):
    """The response of :func:`stream_rust_binding`."""

    invalid_event_message: str = "tinyagent._alchemy returned an invalid event"


def _resolve_provider(model: Model) -> str:
    provider = model.provider.strip()
    if not provider:
        raise ValueError("Model `provider` must be a non-empty string")
    return provider


def _resolve_api(model: Model, provider: str) -> BindingApi:
    explicit = model.api.strip()
    if not explicit:
        return cast(BindingApi, infer_api(provider))
    if explicit not in _BINDING_APIS:
        raise ValueError(
            "Model `api` must be one of "
            "'anthropic-messages', 'openai-completions', or 'minimax-completions'"
        )
    return cast(BindingApi, explicit)


def _resolve_base_url(model: Model, provider: str) -> str:
    # getattr: a plain Model may carry base_url as an extra field.
    base_url = getattr(model, "base_url", None)
    if isinstance(base_url, str) and base_url.strip():
        return base_url.strip()
    default = DEFAULT_BASE_URLS.get(provider.lower())
    if default:
        return default
    raise ValueError("Model `base_url` must be set for unknown providers in rust_binding_provider")


def _resolve_reasoning(
    own: ReasoningMode, model: Model, options: SimpleStreamOptions
) -> ReasoningMode:
    # The order of docs/architecture.md#routing: the model's own setting, then the options, then
    # the level.
    if own is not False:
        return own
    for source in (options.reasoning, model.thinking_level):
        effort = reasoning_effort(source)
        if effort is not None:
            return cast(ReasoningEffort, effort)  # BindingModelPayload rejects an unknown one
    return False


def _model_payload(model: Model, options: SimpleStreamOptions) -> BindingModelPayload:
    provider = _resolve_provider(model)
    if not model.id.strip():
        raise ValueError("Model `id` must be a non-empty string")
    metadata = resolve_model_metadata(model, context_window=128_000, max_tokens=None)
    explicit_cap = "max_tokens" in model.model_fields_set
    compat = getattr(model, "compat", None)
    return BindingModelPayload(
        id=model.id,
        provider=provider,
        api=_resolve_api(model, provider),
        base_url=_resolve_base_url(model, provider),
        name=metadata.name,
        headers=dict(metadata.headers) if metadata.headers is not None else None,
        reasoning=_resolve_reasoning(metadata.reasoning, model, options),
        context_window=metadata.context_window or 128_000,
        max_tokens=metadata.max_tokens if explicit_cap else None,
        compat=dict(compat) if isinstance(compat, dict) else None,
    )


def _model_dict(model: Model, options: SimpleStreamOptions) -> dict[str, Any]:
    return dump_model_payload(_model_payload(model, options))


def _typed_payloads(payloads: alchemy_provider.Payloads) -> alchemy_provider.Payloads:
    """The context and options dicts checked through this module's payload models (the model
    dict was built through its own)."""
    model_dict, context_dict, options_dict = payloads
    context_payload = BindingContextPayload.model_validate(context_dict)
    options_payload = BindingOptionsPayload.model_validate(options_dict)
    return model_dict, dump_model_payload(context_payload), dump_model_payload(options_payload)


async def stream_rust_binding(
    model: Model, context: Context, options: SimpleStreamOptions
) -> RustBindingStreamResponse:
    """Start one streamed completion on the Rust core with this module's routing rules."""
    started = alchemy_provider.start_core_stream(
        model, context, options, route=_model_dict, check=_typed_payloads
    )
    return RustBindingStreamResponse(
        _handle=started.handle, signal=started.signal, partial=started.partial, scrub=started.scrub
    )
