"""The asyncio side of the Rust core's batch interface (docs/design.md).

``drain()`` batches are the one way the package reads the core's handles. One ``Notifier`` per
running event loop is registered with ``loop.add_reader`` while any stream of that loop is attached
(a loop without ``add_reader``, such as Windows' Proactor, gets one watcher thread per loop blocked
in ``Notifier.wait`` instead). When it fires, the :class:`_LoopDispatcher` asks it which streams
have new events (``take_ready()``) and wakes them; each stream drains its handle in one call (a list
of compact 4-tuples) and applies the whole batch to its single live partial
(:class:`PartialBuilder`), so nothing waits in a thread pool (R11) and no JSON crosses the boundary
per token (R9). Only foreign handles that offer just the blocking ``next_event()``/``result()``
pair (the public ``AlchemyStreamResponse(_handle=...)`` seam) are driven from a dedicated thread
per stream (:class:`HandleWorker`), never from the default executor.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from tinyagent._partial import BatchItem, PartialBuilder
from tinyagent.agent_types import AssistantMessage, AssistantMessageEvent

logger = logging.getLogger("tinyagent.alchemy_provider")


class Notifier(Protocol):
    def fileno(self) -> int: ...

    def take_ready(self) -> list[int]: ...

    # ``wait(timeout) -> bool`` (the core's Notifier has it) is needed only on loops that cannot
    # watch the fd; see _LoopDispatcher._watch_in_thread.


# --------------------------------------------------------------------------------------------
# One Notifier per event loop
# --------------------------------------------------------------------------------------------


#: How long the watcher thread of a loop without ``add_reader`` blocks in ``Notifier.wait`` before
#: checking whether it is still wanted.
WATCH_SLICE_SECONDS = 0.5


class _LoopDispatcher:
    """Owns one loop's Notifier; its fd is watched only while a stream of the loop is attached."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self._fd = notifier.fileno()
        # Weak values: an abandoned response is collected (dropping its handle cancels the HTTP
        # stream in the core) instead of being kept alive by the dispatcher.
        self._streams: weakref.WeakValueDictionary[int, BatchEventSource] = (
            weakref.WeakValueDictionary()
        )
        self._tokens = itertools.count(1)
        self._loop_ref: weakref.ReferenceType[asyncio.AbstractEventLoop] | None = None

        # The watcher thread of a loop without add_reader: set while it runs; its Event is set by
        # the loop once it has taken the tokens the thread reported (so it does not spin).
        self._watcher: threading.Event | None = None

    def add(self, stream: BatchEventSource, loop: asyncio.AbstractEventLoop) -> int:
        token = next(self._tokens)
        self._streams[token] = stream
        if self._loop_ref is None:
            if self._fd >= 0 and loop_supports_readers(loop):
                loop.add_reader(self._fd, self._on_readable)
            else:
                self._watch_in_thread(loop)
            self._loop_ref = weakref.ref(loop)
        return token

    def remove(self, token: int) -> None:
        self._streams.pop(token, None)
        if not self._streams:
            self._stop_reading()

    def _stop_reading(self) -> None:
        loop = self._loop_ref() if self._loop_ref is not None else None
        self._loop_ref = None
        if self._watcher is not None:
            self._watcher.set()  # lets the thread see it is no longer wanted
            self._watcher = None
        elif loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)

    def _watch_in_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake ``loop`` from a thread blocked in ``Notifier.wait``: one thread per loop (not per
        stream), exiting once the loop's last stream has ended."""
        taken = threading.Event()
        self._watcher = taken
        wait = self.notifier.wait  # type: ignore[attr-defined]

        def watch() -> None:
            while self._watcher is taken and not loop.is_closed():
                ready = wait(WATCH_SLICE_SECONDS)
                if self._watcher is not taken:
                    return  # replaced or stopped while waiting
                # Nothing ready but no stream left (collected ones leave the weak dictionary
                # without calling remove): a visit to the loop stops the watching there.
                if not ready and self._streams:
                    continue
                taken.clear()
                try:
                    loop.call_soon_threadsafe(self._on_readable)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    return
                # Bounded: a loop closed before running the callback must not strand the thread;
                # a busy loop is merely visited once more (take_ready() then returns nothing).
                taken.wait(WATCH_SLICE_SECONDS)

        threading.Thread(target=watch, name="tinyagent-notifier", daemon=True).start()

    def _on_readable(self) -> None:
        watcher = self._watcher
        try:
            tokens = self.notifier.take_ready()
        except Exception:
            logger.exception("Notifier.take_ready() failed")
            return
        finally:
            if watcher is not None:
                watcher.set()
        for token in tokens:
            stream = self._streams.get(token)
            if stream is not None:
                stream.notify()
        if not self._streams:
            self._stop_reading()


_DISPATCHERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[Callable[[], Notifier], _LoopDispatcher]
] = weakref.WeakKeyDictionary()


def _dispatcher_for(
    loop: asyncio.AbstractEventLoop, notifier_factory: Callable[[], Notifier]
) -> _LoopDispatcher:
    per_loop = _DISPATCHERS.setdefault(loop, {})
    dispatcher = per_loop.get(notifier_factory)
    if dispatcher is None:
        dispatcher = per_loop[notifier_factory] = _LoopDispatcher(notifier_factory())
    return dispatcher


def loop_supports_readers(loop: asyncio.AbstractEventLoop) -> bool:
    """False for loops without ``add_reader``, such as Windows' Proactor loop, which inherit the
    abstract method that raises ``NotImplementedError``."""
    add_reader = getattr(type(loop), "add_reader", None)
    return add_reader is not None and add_reader is not asyncio.AbstractEventLoop.add_reader


# --------------------------------------------------------------------------------------------
# Event sources
# --------------------------------------------------------------------------------------------


class BatchEventSource:
    """Events of one handle with the batch interface, delivered on the awaiting loop."""

    def __init__(
        self,
        handle: Any,
        notifier_factory: Callable[[], Notifier],
        builder: PartialBuilder,
        scrub: Callable[[str], str],
    ) -> None:
        self._handle = handle
        self._notifier_factory = notifier_factory
        self._builder = builder
        self._scrub = scrub
        self._buffer: deque[AssistantMessageEvent | BatchItem] = deque()
        self._waiters: list[asyncio.Future[None]] = []
        self._dispatcher: _LoopDispatcher | None = None
        self._token = 0
        self._ready = False
        self._ended = False  # terminal event seen, or the start failed
        self._start_error: Exception | None = None
        self._discard = False  # nobody iterates any more: drain only to reach the end

    @property
    def final(self) -> AssistantMessage | None:
        return self._builder.final

    def pop_buffered(self) -> AssistantMessageEvent | None:
        """An already drained event, without awaiting (the common case inside a batch)."""
        return self._builder.materialize(self._buffer.popleft()) if self._buffer else None

    async def next(self) -> AssistantMessageEvent | None:
        while not self._buffer:
            if self._ended:
                return None
            await self._fill()
        return self._builder.materialize(self._buffer.popleft())

    async def final_message(self) -> AssistantMessage:
        while self._builder.final is None:
            if self._start_error is not None:
                raise self._start_error
            if self._ended:
                raise RuntimeError("the stream ended without a final message")
            await self._fill()
        return self._builder.final

    def cancel(self) -> None:
        self._handle.cancel()

    def stop_iteration(self) -> None:
        """Called by ``aclose()``: later batches only advance the stream to its end."""
        self._discard = True
        self._buffer.clear()

    def notify(self) -> None:
        """Dispatcher callback: the handle has undrained events."""
        self._ready = True
        if self._discard and not self._waiters:
            try:
                self._drain()
            except Exception:
                logger.debug("closed stream failed while draining", exc_info=True)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _fill(self) -> None:
        """Wait until at least one batch has been applied, or the stream has ended."""
        while not self._ended:
            if self._ready:
                if self._drain():
                    return
                continue
            loop = asyncio.get_running_loop()
            if self._dispatcher is None:
                self._attach(loop)
                continue
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # Cancelling the awaiting task stops the stream (docs/wire.md#cancellation).
                self._handle.cancel()
                self._discard = True
                raise
            finally:
                self._waiters.remove(waiter)

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        dispatcher = _dispatcher_for(loop, self._notifier_factory)
        self._token = dispatcher.add(self, loop)
        self._dispatcher = dispatcher
        # Marks the token at once when events are already pending, so nothing is missed.
        self._handle.attach(dispatcher.notifier, self._token)

    def _drain(self) -> bool:
        """Apply one drained batch; True if it carried events."""
        self._ready = False
        try:
            batch = self._handle.drain()
        except Exception as exc:
            self._end()
            self._start_error = scrubbed_exception(exc, self._scrub)
            raise self._start_error from None
        if not batch:
            return False
        events = self._builder.apply(batch)
        if not self._discard:
            self._buffer.extend(events)
        if self._builder.finished:
            self._end()
        return True

    def _end(self) -> None:
        self._ended = True
        if self._dispatcher is not None:
            self._dispatcher.remove(self._token)
            self._dispatcher = None


def scrubbed_exception(exc: Exception, scrub: Callable[[str], str]) -> Exception:
    """The same exception with any secret scrubbed from its text (it may echo a provider body)."""
    text = str(exc)
    clean = scrub(text)
    if clean == text:
        return exc
    try:
        return type(exc)(clean)
    except Exception:
        return RuntimeError(clean)


class HandleWorker:
    """Runs one stream's blocking handle calls on its own thread, one call at a time.

    Used for handles without the batch interface (the ``_ALCHEMY_MODULE`` seam, or a loop without
    ``add_reader``). A waiting stream never occupies a slot of the default executor (R11). The
    thread exits after :data:`IDLE_EXIT_SECONDS` without work and is started again on demand, so
    an abandoned stream leaves no thread behind.
    """

    IDLE_EXIT_SECONDS = 1.0

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._requests: deque[
            tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]
        ] = deque()
        self._wakeup = threading.Condition()
        self._running = False
        self._stopping = False

    async def call(self, method: str) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._wakeup:
            self._requests.append((getattr(self._handle, method), future, loop))
            self._stopping = False
            if self._running:
                self._wakeup.notify()
            else:
                self._running = True
                threading.Thread(target=self._serve, name="tinyagent-stream", daemon=True).start()
        try:
            return await future
        except asyncio.CancelledError:
            cancel = getattr(self._handle, "cancel", None)
            if callable(cancel):
                cancel()
            self.stop()
            raise

    def stop(self) -> None:
        """Let the thread exit once the queued calls are done."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()

    def _next_request(
        self,
    ) -> tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop] | None:
        with self._wakeup:
            if not self._requests and not self._stopping:
                self._wakeup.wait(self.IDLE_EXIT_SECONDS)
            if not self._requests:
                self._running = False  # decided under the lock: call() starts a new thread
                return None
            return self._requests.popleft()

    def _serve(self) -> None:
        while (request := self._next_request()) is not None:
            function, future, loop = request
            try:
                outcome: tuple[bool, Any] = (True, function())
            except BaseException as exc:  # delivered to the awaiting task, re-raised there
                outcome = (False, exc)
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
