"""The built-in provider: ``OpenAICompatModel`` and ``stream_alchemy_openai_completions``.

Python decides routing (provider, api, URL, key, reasoning; docs/architecture.md#routing), checks
what the wire cannot carry before any network activity, and hands plain dicts to the Rust core
``tinyagent._alchemy`` (docs/architecture.md#payload), which owns the HTTP/SSE transport. Events
come back through the asyncio bridge of :mod:`tinyagent._bridge`.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, cast

from pydantic import model_validator

from tinyagent._bridge import (
    BatchEventSource,
    HandleWorker,
    Notifier,
    PartialBuilder,
    loop_supports_readers,
    scrubbed_exception,
)
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
from tinyagent.agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
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


async def stream_alchemy_openai_completions(
    model: Model, context: Context, options: SimpleStreamOptions
) -> AlchemyStreamResponse:
    """Start one streamed completion on the Rust core and return its response."""
    if options is None:
        options = SimpleStreamOptions()
    core = _load_core()
    model_dict = build_model_dict(model, options)
    context_dict = build_context_dict(context, model_dict["api"])
    api_key = resolve_api_key(model_dict["provider"], options)
    options_dict = build_options_dict(model, options, api_key)
    if model_dict["api"] == ANTHROPIC_MESSAGES:
        _warn_experimental_once(model_dict["provider"])
    scrub = make_scrubber([api_key, *credential_headers(model_dict["headers"], options.headers)])
    try:
        handle = core.openai_completions_stream(model_dict, context_dict, options_dict)
    except Exception as exc:
        clean = scrubbed_exception(exc, scrub)
        if clean is exc:
            raise
        raise clean from None
    partial = AssistantMessage(
        content=[],
        stop_reason="stop",
        timestamp=now_ms(),
        api=model_dict["api"],
        provider=model_dict["provider"],
        model=model.id,
    )
    return AlchemyStreamResponse(
        _handle=handle,
        signal=options.signal,
        _notifier_factory=getattr(core, "Notifier", None),
        _partial=partial,
        _scrub=scrub,
    )


# --------------------------------------------------------------------------------------------
# AlchemyStreamResponse (docs/architecture.md#batch-interface)
# --------------------------------------------------------------------------------------------

_USAGE_KEYS = frozenset({"input", "output", "cache_read", "cache_write", "total_tokens", "cost"})
_COST_KEYS = frozenset({"input", "output", "cache_read", "cache_write", "total"})
_DEFAULT_INVALID_EVENT = "tinyagent._alchemy returned an invalid event"


def validate_final_message(raw: object) -> AssistantMessage:
    """The final message with the usage shape of docs/architecture.md#types checked (presence
    only)."""
    if isinstance(raw, AssistantMessage):
        usage = raw.usage
    elif isinstance(raw, dict):
        usage = raw.get("usage")
    else:
        raise RuntimeError("result: assistant message must be a dict")
    if not isinstance(usage, dict):
        raise RuntimeError("result: usage must be a dict")
    missing = sorted(_USAGE_KEYS.difference(usage))
    if missing:
        raise RuntimeError(f"result: usage missing key(s): {', '.join(missing)}")
    cost = usage["cost"]
    if not isinstance(cost, dict):
        raise RuntimeError("result: usage.cost must be a dict")
    missing = sorted(_COST_KEYS.difference(cost))
    if missing:
        raise RuntimeError(f"result: usage.cost missing key(s): {', '.join(missing)}")
    return raw if isinstance(raw, AssistantMessage) else AssistantMessage.model_validate(raw)


_CORE_NOTIFIER = object()


def _core_notifier_factory() -> Callable[[], Notifier] | None:
    try:
        core = importlib.import_module("tinyagent._alchemy")
    except ImportError:
        return None
    return getattr(core, "Notifier", None)


class AlchemyStreamResponse:
    """The ``StreamResponse`` of a core stream handle: async events, ``result()``, ``aclose()``.

    A handle with ``attach``/``drain`` (every core handle) is read on the awaiting loop through the
    bridge, with one live partial per stream (docs/architecture.md#partial). Any other object with
    ``next_event()``/``result()`` (the seam) is driven from a dedicated thread, events validated.
    """

    def __init__(
        self,
        _handle: Any,
        invalid_event_message: str = _DEFAULT_INVALID_EVENT,
        *,
        signal: asyncio.Event | None = None,
        _notifier_factory: Callable[[], Notifier] | None | object = _CORE_NOTIFIER,
        _partial: AssistantMessage | None = None,
        _scrub: Callable[[str], str] | None = None,
    ) -> None:
        self._handle = _handle
        self.invalid_event_message = invalid_event_message
        self._signal = signal
        self._scrub = _scrub or (lambda text: text)
        self._partial = _partial if _partial is not None else AssistantMessage(content=[])
        self._final_message: AssistantMessage | None = None
        self._closed = False
        self._batch: BatchEventSource | None = None
        self._worker: HandleWorker | None = None
        self._thread_events_done = False
        self._watch: asyncio.Task[None] | None = None
        self._listener: Callable[[], None] | None = None  # on a signal with add_listener
        # Default: a handle with the batch interface is taken to come from the real core. A
        # module stand-in without a Notifier passes None, and its handles go through a thread.
        if _notifier_factory is _CORE_NOTIFIER:
            _notifier_factory = _core_notifier_factory()
        self._notifier_factory = cast("Callable[[], Notifier] | None", _notifier_factory)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # constructed outside a loop: the signal is watched from the first await
        self._watch_signal()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AlchemyStreamResponse {state} handle={type(self._handle).__name__}>"

    # -- the signal ------------------------------------------------------------------------

    def _watch_signal(self) -> None:
        signal = self._signal
        if signal is None or self._watch is not None or self._listener is not None:
            return
        if signal.is_set():
            self._signal = None  # seen: cancel once
            self._cancel_handle()
            return
        add_listener = getattr(signal, "add_listener", None)
        if add_listener is not None:  # the loop's RunSignal: a callback, not a task
            self._listener = functools.partial(_cancel_ref, weakref.ref(self))
            add_listener(self._listener)
            return
        self._watch = asyncio.get_running_loop().create_task(
            _cancel_on_signal(signal, weakref.ref(self))
        )

    def _stop_watching(self) -> None:
        if self._listener is not None:
            self._signal.remove_listener(self._listener)  # type: ignore[union-attr]
        elif self._watch is not None and not self._watch.done():
            self._watch.cancel()

    def _cancel_handle(self) -> None:
        cancel = getattr(self._handle, "cancel", None)
        if callable(cancel):
            cancel()

    # -- choosing the path -----------------------------------------------------------------

    def _batch_source(self) -> BatchEventSource | None:
        if self._batch is not None:
            return self._batch
        if self._worker is not None or self._notifier_factory is None:
            return None
        if not (hasattr(self._handle, "attach") and hasattr(self._handle, "drain")):
            return None
        loop = asyncio.get_running_loop()  # without add_reader: woken through Notifier.wait
        if not loop_supports_readers(loop) and not hasattr(self._notifier_factory, "wait"):
            return None  # a stand-in notifier that cannot do that: next_event() on a thread
        self._batch = BatchEventSource(
            self._handle,
            self._notifier_factory,
            PartialBuilder(self._partial, self._scrub),
            self._scrub,
        )
        return self._batch

    def deliver_ends_only(self) -> None:
        """From now on iterate only the events that open, retry or end the stream.

        The tokens never leave the core: no wake-up, drain, partial update or event object per
        token; ``result()`` is the same final message. For readers that do not show tokens as
        they come, such as batch rows (docs/batch.md#cpu). A handle without this ability (the
        ``_handle`` seam) keeps delivering everything.
        """
        deliver = getattr(self._handle, "deliver_ends_only", None)
        if callable(deliver):
            deliver()

    def _thread_worker(self) -> HandleWorker:
        if self._worker is None:
            self._worker = HandleWorker(self._handle)
        return self._worker

    # -- StreamResponse --------------------------------------------------------------------

    def __aiter__(self) -> AlchemyStreamResponse:
        return self

    async def __anext__(self) -> AssistantMessageEvent:
        event: AssistantMessageEvent | None = None
        if self._closed:
            raise StopAsyncIteration
        batch = self._batch
        if batch is not None:
            event = batch.pop_buffered()
            if event is not None and event.partial is not None:
                return event  # not terminal: done/error carry no partial
        self._watch_signal()
        batch = self._batch_source()
        if batch is not None:
            if event is None:
                try:
                    event = await batch.next()
                except BaseException:  # start failure or cancellation: nothing left to watch
                    self._stop_watching()
                    raise
            if event is None:
                self._finish_iteration()
                raise StopAsyncIteration
            if batch.final is not None and event.type in ("done", "error"):
                self._stop_watching()
            return event
        if self._thread_events_done:
            raise StopAsyncIteration
        try:
            raw = await self._thread_worker().call("next_event")
        except Exception as exc:
            self._stop_watching()
            self._raise_scrubbed(exc)
        except BaseException:
            self._stop_watching()
            raise
        if raw is None:
            self._thread_events_done = True
            self._finish_iteration()
            raise StopAsyncIteration
        if isinstance(raw, AssistantMessageEvent):
            return raw
        if not isinstance(raw, dict):
            raise RuntimeError(self.invalid_event_message)
        return AssistantMessageEvent.model_validate(raw)

    def _raise_scrubbed(self, exc: Exception) -> NoReturn:
        clean = scrubbed_exception(exc, self._scrub)
        if clean is exc:
            raise exc
        raise clean from None

    def _finish_iteration(self) -> None:
        self._stop_watching()
        if self._worker is not None:
            self._worker.stop()

    async def result(self) -> AssistantMessage:
        if self._final_message is not None:
            return self._final_message
        self._watch_signal()
        try:
            raw = await self._raw_final_message()
        finally:
            self._stop_watching()  # the stream has ended, failed or been cancelled
        message = validate_final_message(raw)
        self._final_message = message
        return message

    async def _raw_final_message(self) -> object:
        batch = self._batch_source()
        if batch is not None:
            return await batch.final_message()
        worker = self._thread_worker()
        try:
            raw = await worker.call("result")
        except Exception as exc:
            self._raise_scrubbed(exc)
        if self._thread_events_done or self._closed:
            worker.stop()
        return raw

    async def aclose(self) -> None:
        """Stop the stream: cancel the HTTP request and end the iteration.

        See docs/wire.md#cancellation.
        """
        if self._closed:
            return
        self._closed = True
        self._cancel_handle()
        self._stop_watching()
        if self._batch is not None:
            self._batch.stop_iteration()
        if self._worker is not None:
            self._worker.stop()


async def _cancel_on_signal(
    signal: asyncio.Event, response_ref: weakref.ReferenceType[AlchemyStreamResponse]
) -> None:
    # Holds the response weakly: an abandoned response can still be collected, which drops (and
    # so cancels) its handle.
    await signal.wait()
    _cancel_ref(response_ref)


def _cancel_ref(response_ref: weakref.ReferenceType[AlchemyStreamResponse]) -> None:
    response = response_ref()
    if response is not None:
        response._cancel_handle()
