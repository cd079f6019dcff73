"""``EventStream``: the single-consumer async stream the agent loop pushes its events into
(docs/events.md#run-structure). Public as ``tinyagent.agent_types.EventStream``."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeAlias, TypeVar

T = TypeVar("T")
R = TypeVar("R")


EventStreamQueueItem: TypeAlias = Any


class EventStream(Generic[T, R]):
    """A single-consumer async stream of events that ends on an end event or ``end(result)``.

    Its asyncio objects are made lazily inside the running loop, never at construction, so the
    same kind of object can serve runs on different loops (docs/architecture.md#event-loops).
    """

    def __init__(self, is_end_event: Callable[[T], bool], get_result: Callable[[T], R]) -> None:
        self._is_end_event = is_end_event
        self._get_result = get_result
        self._queue: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False  # no more pushes accepted
        self._finished = False  # the consumer has seen the end
        self._has_result = False
        self._result: R | None = None
        self._exception: BaseException | None = None

    def push(self, event: T) -> None:
        if self._closed:
            return
        self._queue.append(event)
        if self._is_end_event(event):
            self._closed = True
        self._wake()

    def end(self, result: R | None = None) -> None:
        if self._closed and self._has_result:
            return
        self._closed = True
        if result is not None and not self._has_result:
            self._result = result
            self._has_result = True
        self._wake()

    def set_exception(self, exc: BaseException) -> None:
        if self._closed:
            return
        self._exception = exc
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> EventStream[T, R]:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._finished:
                raise StopAsyncIteration
            if self._queue:
                event = self._queue.popleft()
                if self._is_end_event(event):
                    self._finished = True
                    self._result = self._get_result(event)
                    self._has_result = True
                return event
            if self._closed:
                self._finished = True
                if self._exception is not None:
                    raise self._exception
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def result(self) -> R:
        async for _ in self:
            pass
        if self._exception is not None:
            raise self._exception
        if not self._has_result:
            return []  # type: ignore[return-value]
        return self._result  # type: ignore[return-value]
