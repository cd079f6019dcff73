"""The run signal's listeners (``RunSignal.add_listener``) and the watchers built on them.

The loop watches a :class:`RunSignal` with listeners instead of one task per guarded phase
(``AbortWatch``, the provider response's handle cancel, the tool batch's abort wait); a plain
``asyncio.Event`` passed by the caller is still watched by a task. Abort behaviour itself is in
tests/test_agent_abort.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from support.agent_support import sum_tool
from support.batch_support import make_agent

from tinyagent._run_support import AbortWatch, RunSignal, signal_future
from tinyagent.testing import ModelServer, Reply, ToolCallSpec


def test_listeners_are_called_once_on_the_loop_after_set():
    async def main() -> list[str]:
        calls: list[str] = []
        signal = RunSignal()
        signal.add_listener(lambda: calls.append("a"))
        signal.add_listener(lambda: calls.append("b"))
        signal.set()
        calls.append("after set")  # listeners run from the loop, not inside set()
        await asyncio.sleep(0)
        signal.set()
        await asyncio.sleep(0)
        return calls

    assert asyncio.run(main()) == ["after set", "a", "b"]


def test_a_listener_added_to_a_set_signal_runs_soon_and_a_removed_one_never():
    async def main() -> list[str]:
        calls: list[str] = []
        signal = RunSignal()

        def gone() -> None:
            calls.append("removed")

        signal.add_listener(gone)
        signal.remove_listener(gone)
        signal.remove_listener(gone)  # twice is fine
        signal.abort()
        signal.add_listener(lambda: calls.append("late"))
        await asyncio.sleep(0)
        return calls

    assert asyncio.run(main()) == ["late"]


def test_abort_watch_cancels_the_guarded_task_without_a_watcher_task():
    async def main() -> tuple[bool, bool, int]:
        signal = RunSignal()
        tasks_before = len(asyncio.all_tasks())

        async def guarded() -> bool:
            watch = AbortWatch(signal)
            assert watch.watcher is None and watch.listening
            tasks_during.append(len(asyncio.all_tasks()))
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                return watch.stop()
            return watch.stop()

        tasks_during: list[int] = []
        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0)
        signal.abort()
        fired = await asyncio.wait_for(task, 5)
        return fired, not signal._listeners, tasks_during[0] - tasks_before

    fired, forgotten, extra_tasks = asyncio.run(main())
    assert fired and forgotten
    assert extra_tasks == 1  # the guarded task itself, no watcher


def test_abort_watch_on_a_plain_event_still_works():
    async def main() -> bool:
        signal = asyncio.Event()

        async def guarded() -> bool:
            watch = AbortWatch(signal)
            assert watch.watcher is not None
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                pass
            return watch.stop()

        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0)
        signal.set()
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(main())


def test_a_stopped_watch_is_not_fired_by_a_later_abort():
    async def main() -> tuple[bool, bool]:
        signal = RunSignal()
        watch = AbortWatch(signal)
        stopped = watch.stop()
        signal.abort()
        await asyncio.sleep(0.01)
        return stopped, watch.fired

    assert asyncio.run(main()) == (False, False)


def test_signal_future_completes_on_set_and_forgets_its_listener_when_cancelled():
    async def main() -> tuple[bool, bool]:
        signal = RunSignal()
        first = signal_future(signal)
        second = signal_future(signal)
        second.cancel()
        await asyncio.sleep(0)
        forgotten = len(signal._listeners) == 1
        signal.set()
        await asyncio.wait_for(first, 5)
        return first.result(), forgotten

    assert asyncio.run(main()) == (True, True)


def test_a_run_on_the_provider_leaves_no_listener_and_no_task_behind():
    # a tool call then an answer on the real provider: AbortWatch per call, the response's
    # handle watch and the tool batch's abort wait all listen on the run's signal
    def brain(request: dict[str, Any]) -> Reply:
        if request["messages"][-1]["role"] == "tool":
            return Reply(text="done")
        return Reply(tool_calls=[ToolCallSpec("sum", {"a": 1, "b": 2}, id="c1")])

    async def main(url: str) -> tuple[Any, list[RunSignal], int]:
        agent = make_agent(url)
        agent.set_tools([sum_tool()])
        signals: list[RunSignal] = []
        tasks: list[int] = []

        def listener(event: Any) -> None:
            run = agent._run
            if run is not None:
                signals.append(run.signal)
                tasks.append(len(asyncio.all_tasks()))

        agent.subscribe(listener)
        reply = await agent.prompt("add")
        return reply, signals, max(tasks)

    with ModelServer(brain) as server:
        reply, signals, most_tasks = asyncio.run(main(server.url))
    assert reply.content[0].text == "done"
    assert signals and all(not s._listeners for s in set(signals))
    # main, the run task, and the tool call's task while it runs: no watcher tasks
    assert most_tasks <= 3
