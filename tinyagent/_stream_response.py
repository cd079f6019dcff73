"""``AlchemyStreamResponse``: the ``StreamResponse`` over one Rust core stream handle.

Split from :mod:`tinyagent.alchemy_provider` (which starts the streams and re-exports this class):
this module only reads a handle. Events come through the asyncio bridge of
:mod:`tinyagent._bridge` (docs/architecture.md#batch-interface), or, for a handle that has only the
blocking ``next_event()``/``result()`` pair, from a thread of its own.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import weakref
from collections.abc import Callable
from typing import Any, NoReturn, cast

from tinyagent._bridge import (
    BatchEventSource,
    HandleWorker,
    Notifier,
    PartialBuilder,
    loop_supports_readers,
    scrubbed_exception,
)
from tinyagent._messages import check_usage
from tinyagent.agent_types import AssistantMessage, AssistantMessageEvent

__all__ = ["AlchemyStreamResponse", "validate_final_message"]

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
    check_usage(usage, "result")
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
