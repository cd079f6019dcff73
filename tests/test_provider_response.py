"""AlchemyStreamResponse over foreign handles (only ``next_event()``/``result()``;
docs/architecture.md#batch-interface).

Such handles come from the ``_ALCHEMY_MODULE`` seam or ``AlchemyStreamResponse(_handle=...)`` and
are driven from a dedicated thread per stream.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

import pytest
from support.provider_support import LIVENESS, collect, local_stream, run, use_core

from tinyagent import alchemy_provider as ap
from tinyagent.agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    Context,
    SimpleStreamOptions,
    new_zero_usage,
)
from tinyagent.alchemy_provider import AlchemyStreamResponse, OpenAICompatModel


def final(**overrides: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": [{"type": "text", "text": "hi"}]}
    message["usage"] = new_zero_usage()
    message.update(overrides)
    return message


class ListHandle:
    """A foreign handle: hands out queued events, then ``None`` for ever."""

    def __init__(self, events: list[Any], result: Any = None) -> None:
        self._events = deque(events)
        self._result = final() if result is None else result
        self.threads: set[str] = set()
        self.result_calls = 0

    def next_event(self) -> Any:
        self.threads.add(threading.current_thread().name)
        if not self._events:
            return None
        item = self._events.popleft()
        if isinstance(item, BaseException):
            raise item
        return item

    def result(self) -> Any:
        self.result_calls += 1
        return self._result


class BlockingHandle:
    """A foreign handle whose ``next_event`` blocks until ``cancel()``, like a silent server."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._ended = False
        self.cancel_calls = 0

    def next_event(self) -> Any:
        if self._ended:
            return None
        self._cancelled.wait(LIVENESS)
        self._ended = True
        return {"type": "error", "reason": "aborted", "error": final(stop_reason="aborted")}

    def result(self) -> Any:
        self._cancelled.wait(LIVENESS)
        return final(stop_reason="aborted", error_message="Request was aborted")

    def cancel(self) -> None:
        self.cancel_calls += 1
        self._cancelled.set()


def test_dict_events_are_validated_and_objects_pass_through() -> None:
    ready = AssistantMessageEvent(type="text_end", content_index=0, content="hi")
    handle = ListHandle(
        [
            {"type": "start", "partial": {"role": "assistant", "content": []}},
            {"type": "text_delta", "content_index": 0, "delta": "hi", "partial": final()},
            ready,
            {"type": "done", "reason": "stop", "message": final()},
        ]
    )
    events = run(collect(AlchemyStreamResponse(_handle=handle)))
    assert [e.type for e in events] == ["start", "text_delta", "text_end", "done"]
    assert isinstance(events[1].partial, AssistantMessage)
    assert events[1].partial.content[0].text == "hi"
    assert events[2] is ready
    assert isinstance(events[3].message, AssistantMessage)
    # A dedicated thread, not the default executor's workers.
    assert handle.threads == {"tinyagent-stream"}


@pytest.mark.parametrize("bad", ["text", 3, ["start"], object()])
def test_invalid_event_raises_the_configured_message(bad: Any) -> None:
    handle = ListHandle([bad])
    with pytest.raises(RuntimeError, match=r"^tinyagent\._alchemy returned an invalid event$"):
        run(collect(AlchemyStreamResponse(_handle=handle)))
    custom = AlchemyStreamResponse(_handle=ListHandle([bad]), invalid_event_message="nope")
    assert custom.invalid_event_message == "nope"
    with pytest.raises(RuntimeError, match="^nope$"):
        run(collect(custom))


def test_handle_exceptions_propagate() -> None:
    handle = ListHandle([RuntimeError("failed to start openai-completions stream: boom")])
    with pytest.raises(RuntimeError, match="failed to start openai-completions stream: boom"):
        run(collect(AlchemyStreamResponse(_handle=handle)))


def test_positional_handle_like_the_old_dataclass() -> None:
    response = AlchemyStreamResponse(ListHandle([]))
    assert run(collect(response)) == []
    assert response.invalid_event_message == "tinyagent._alchemy returned an invalid event"


def test_result_accepts_dict_or_message_and_is_cached() -> None:
    handle = ListHandle([], result=final(stop_reason="length"))
    response = AlchemyStreamResponse(_handle=handle)

    async def twice() -> tuple[AssistantMessage, AssistantMessage]:
        return await response.result(), await response.result()

    first, second = run(twice())
    assert first is second and first.stop_reason == "length"
    assert handle.result_calls == 1
    ready = AssistantMessage.model_validate(final())
    assert run(AlchemyStreamResponse(_handle=ListHandle([], result=ready)).result()) is ready


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("not a message", "result: assistant message must be a dict"),
        (final(usage=None), "result: usage must be a dict"),
        (final(usage=[1]), "result: usage must be a dict"),
        (
            final(usage={"input": 0, "total_tokens": 0, "cost": {}}),
            "result: usage missing key(s): cache_read, cache_write, output",
        ),
        (final(usage={**new_zero_usage(), "cost": 0}), "result: usage.cost must be a dict"),
        (
            final(usage={**new_zero_usage(), "cost": {"input": 0.0, "output": 0.0}}),
            "result: usage.cost missing key(s): cache_read, cache_write, total",
        ),
    ],
)
def test_result_shape_errors(result: Any, message: str) -> None:
    response = AlchemyStreamResponse(_handle=ListHandle([], result=result))
    with pytest.raises(RuntimeError) as info:
        run(response.result())
    assert str(info.value) == message


def test_result_checks_presence_only() -> None:
    usage = {**new_zero_usage(), "input": "many", "extra": 1}
    response = AlchemyStreamResponse(_handle=ListHandle([], result=final(usage=usage)))
    assert run(response.result()).usage == usage


def test_aclose_cancels_and_stops_iteration() -> None:
    handle = BlockingHandle()

    async def main() -> None:
        response = AlchemyStreamResponse(_handle=handle)
        await response.aclose()
        with pytest.raises(StopAsyncIteration):
            await response.__anext__()
        assert (await response.result()).stop_reason == "aborted"

    run(main())
    assert handle.cancel_calls == 1


def test_aclose_without_cancel_method_only_ends_iteration() -> None:
    async def main() -> None:
        response = AlchemyStreamResponse(_handle=ListHandle([{"type": "start"}]))
        await response.aclose()
        assert await collect(response) == []

    run(main())


def test_signal_reaches_cancel_of_a_blocked_handle() -> None:
    handle = BlockingHandle()

    async def main() -> list[AssistantMessageEvent]:
        signal = asyncio.Event()
        response = AlchemyStreamResponse(_handle=handle, signal=signal)
        asyncio.get_running_loop().call_later(0.05, signal.set)
        return await collect(response)

    events = run(main())
    assert handle.cancel_calls == 1
    assert [e.type for e in events] == ["error"]


def test_cancelling_the_awaiting_task_cancels_a_foreign_handle() -> None:
    handle = BlockingHandle()

    async def main() -> None:
        task = asyncio.create_task(collect(AlchemyStreamResponse(_handle=handle)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert handle.cancel_calls == 1


def test_waiting_streams_leave_the_default_executor_free() -> None:
    handles = [BlockingHandle() for _ in range(40)]

    async def main() -> float:
        loop = asyncio.get_running_loop()
        tasks = [asyncio.create_task(collect(AlchemyStreamResponse(_handle=h))) for h in handles]
        await asyncio.sleep(0.05)
        started = loop.time()
        await asyncio.to_thread(int)
        waited = loop.time() - started
        for handle in handles:
            handle.cancel()
        await asyncio.gather(*tasks)
        return waited

    assert run(main()) < LIVENESS


def test_stream_through_the_module_seam(monkeypatch: pytest.MonkeyPatch) -> None:
    handle = ListHandle([{"type": "start"}, {"type": "done", "reason": "stop", "message": final()}])
    use_core(monkeypatch, lambda model, context, options: handle)

    async def main() -> tuple[list[AssistantMessageEvent], AssistantMessage]:
        response = await local_stream()
        return await collect(response), await response.result()

    events, message = run(main())
    assert [e.type for e in events] == ["start", "done"]
    assert message.content[0].text == "hi"


def test_response_repr_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    use_core(monkeypatch, lambda model, context, options: ListHandle([]))
    options = SimpleStreamOptions(api_key="sk-top-secret", headers={"X-Key": "hdr-secret"})
    model = OpenAICompatModel(headers={"Authorization": "Bearer model-secret"})
    response = asyncio.run(ap.stream_alchemy_openai_completions(model, Context(), options))
    for secret in ("sk-top-secret", "hdr-secret", "model-secret"):
        for shown in (repr(response), repr(response.__dict__), repr(model), str(model)):
            assert secret not in shown


def test_key_and_credential_headers_are_scrubbed_from_handle_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def open_stream(model: Any, context: Any, options: Any) -> ListHandle:
        echoed = f"HTTP 401: key {options['api_key']} / {model['headers']['Authorization']}"
        return ListHandle([RuntimeError(echoed + " (attempt 1)")])

    use_core(monkeypatch, open_stream)
    model = OpenAICompatModel(headers={"Authorization": "Bearer tok-abcdef", "X-Flag": "1"})
    options = SimpleStreamOptions(api_key="sk-live-777")

    async def main() -> None:
        response = await ap.stream_alchemy_openai_completions(model, Context(), options)
        await response.__anext__()

    with pytest.raises(RuntimeError) as info:
        run(main())
    assert str(info.value) == "HTTP 401: key *** / *** (attempt 1)"


def test_abandoned_stream_leaves_no_worker_thread() -> None:
    handle = ListHandle([{"type": "start"}, {"type": "text_start", "content_index": 0}])

    async def main() -> threading.Thread:
        response = AlchemyStreamResponse(_handle=handle)
        await response.__anext__()  # starts the worker, then the response is dropped
        return next(t for t in threading.enumerate() if t.name == "tinyagent-stream")

    worker = run(main())
    worker.join(LIVENESS)
    assert not worker.is_alive()


def test_module_stand_in_without_notifier_is_driven_by_next_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class HybridHandle(ListHandle):
        def attach(self, notifier: Any, token: int) -> None:
            raise AssertionError("batch path used without a Notifier from the module")

        def drain(self) -> list:
            raise AssertionError("batch path used without a Notifier from the module")

    handle = HybridHandle(
        [{"type": "start"}, {"type": "done", "reason": "stop", "message": final()}]
    )
    use_core(monkeypatch, lambda model, context, options: handle)

    async def main() -> list[AssistantMessageEvent]:
        return await collect(await local_stream())

    assert [e.type for e in run(main())] == ["start", "done"]
