"""``backend="ray"`` on a real local Ray (one per module, 2 CPUs) against the loopback
ModelServer of this process, which the Ray workers reach over 127.0.0.1: the same rows as the
local backend, in input order, run in the workers; what does not pickle named before anything
is sent; budget, ``max_failures``, the lazy input and the resume cache kept by the driver; the
interrupt and Stop cancelling the Ray calls and returning the partial result
(docs/batch.md#ray-backend).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

ray = pytest.importorskip(
    "ray", reason="the Ray backend tests need Ray: pip install -e '.[dev,ray]'"
)

from support import batch_support  # noqa: E402

from tinyagent import (  # noqa: E402
    Agent,
    AgentTool,
    AgentToolResult,
    BatchResult,
    TextContent,
    arun_batch,
    run_batch,
)
from tinyagent.batch._engine import BatchOptions  # noqa: E402
from tinyagent.batch._progress import ProgressCounts  # noqa: E402
from tinyagent.batch._ray import NotPicklableError, RayOptions, run_ray  # noqa: E402
from tinyagent.testing import Fault, ModelServer, Reply, ToolCallSpec, Usage  # noqa: E402

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def local_ray() -> Any:
    """One local Ray for the module. The workers cannot import this test module (pytest put
    tests/ on the driver's sys.path only), so its tools and brains travel by value, as a
    notebook's or a script's own functions do."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    for attempt in (1, 2, 3):  # on a loaded machine Ray's own start can time out
        try:
            ray.init(num_cpus=2, include_dashboard=False)
            break
        except Exception as exc:
            ray.shutdown()
            if attempt == 3 or "timed out during startup" not in str(exc):
                raise
    yield ray
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def make_agent(url: str, tools: list[AgentTool] | None = None) -> Agent:
    agent = batch_support.make_agent(url)
    if tools:
        agent.set_tools(tools)
    return agent


def first_user(request: dict[str, Any]) -> str:
    return request["messages"][0]["content"]


def add(tool_call_id: str, args: dict[str, Any], signal: Any, on_update: Any) -> AgentToolResult:
    """A plain def (run in a thread on the worker) that says which process ran it."""
    total = args["a"] + args["b"]
    return AgentToolResult(content=[TextContent(text=f"{total} in pid {os.getpid()}")])


ADD = AgentTool(
    name="add",
    description="Add two numbers",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
    execute=add,
)


class Brain:
    """``add i`` rows call the tool, then quote its result; ``fail`` rows get an HTTP 400;
    every other row is echoed. Each reply waits a little, at random, so rows finish out of
    order; every reply costs 15 tokens."""

    def __init__(self, delay: float = 0.03) -> None:
        self.delay = delay
        self.rng = random.Random(5)
        self.lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> Reply:
        with self.lock:
            delay = self.rng.random() * self.delay
        prompt, last = first_user(request), request["messages"][-1]
        if prompt.startswith("fail"):
            return Reply(fault=Fault.http(400, "this row is refused"))
        if last["role"] == "tool":
            return Reply(text=f"the sum is {last['content']}", usage=Usage(10, 5), delay=delay)
        if prompt.startswith("add"):
            n = int(prompt.split()[1])
            call = ToolCallSpec("add", {"a": n, "b": 1})
            return Reply(tool_calls=[call], usage=Usage(10, 5), delay=delay)
        return Reply(text=f"echo {prompt}", usage=Usage(10, 5), delay=delay, chunk_chars=3)


class Recording:
    """A Progress that keeps the largest number of rows seen running and can press Stop."""

    def __init__(self, check: Any = None) -> None:
        self.max_running = 0
        self.finished: Any = None
        self.check = check
        self.stop: Any = None

    def start(self, counts: ProgressCounts) -> None:
        pass

    def update(self, counts: ProgressCounts) -> None:
        self.max_running = max(self.max_running, counts.running)
        if self.check is not None:
            self.check(self, counts)

    def finish(self, counts: ProgressCounts, stopped: str | None) -> None:
        self.finished = (counts.done, counts.failed, counts.not_run, stopped)

    def on_stop(self, callback: Any) -> None:
        self.stop = callback


def rows_of(result: BatchResult) -> list[tuple[Any, ...]]:
    """What must not depend on the backend (the tool's pid aside)."""
    return [
        (row.index, row.input, re.sub(r"pid \d+", "pid N", str(row.output)), row.error,
         row.attempts, row.usage["total_tokens"])
        for row in result
    ]  # fmt: skip


def test_ray_gives_the_local_backends_rows_in_input_order(local_ray: Any):
    inputs = [f"add {i}" if i % 3 == 0 else f"q{i}" for i in range(30)]
    inputs[10] = "fail 10"
    with ModelServer(Brain()) as server:
        agent = make_agent(server.url, [ADD])
        local = run_batch(agent, inputs, concurrency=6, progress=False)
        server.clear_requests()
        progress = Recording()
        remote = run_batch(agent, inputs, concurrency=6, backend="ray", progress=progress)
    assert rows_of(remote) == rows_of(local)
    assert [row.input for row in remote] == inputs
    assert remote[3].output.startswith("the sum is 4 in pid")
    assert remote[1].output == "echo q1" and remote[10].error is not None
    assert "400" in remote[10].error and remote.counts["failed"] == 1
    assert remote.usage == local.usage and remote.usage["total_tokens"] == 29 * 15 + 10 * 15
    assert len(server.requests) == 30 + 10  # the tool rows take two requests
    pids = {int(m) for row in remote if (m := _pid(row.output))}
    assert len(pids) == 2 and os.getpid() not in pids  # both workers, never this process
    assert 1 < progress.max_running <= 6
    assert progress.finished == (29, 1, 0, None)


def _pid(output: Any) -> str | None:
    found = re.search(r"pid (\d+)", str(output))
    return found.group(1) if found else None


class Label(BaseModel):
    label: str
    score: float


def labels(request: dict[str, Any]) -> Reply:
    prompt = first_user(request).split("\n")[0]
    return Reply(text=f'{{"label": "{prompt}", "score": 0.5}}', usage=Usage(10, 5))


def test_output_type_instances_come_back_as_the_drivers_class(local_ray: Any):
    with ModelServer(labels) as server:
        result = run_batch(make_agent(server.url), ["good", "bad", "meh"], output_type=Label,
                           backend="ray", progress=False)  # fmt: skip
    assert all(type(row.output) is Label for row in result)  # this module's class, not a copy
    assert [row.output.label for row in result] == ["good", "bad", "meh"]


def test_what_does_not_pickle_is_named_before_anything_is_sent():
    lock = threading.Lock()

    def guarded(tool_call_id: str, args: Any, signal: Any, on_update: Any) -> AgentToolResult:
        with lock:
            return AgentToolResult(content=[TextContent(text="ok")])

    tool = AgentTool(name="guarded", description="d", parameters={"type": "object"},
                     execute=guarded)  # fmt: skip
    was_running = ray.is_initialized()
    with ModelServer(Brain()) as server:
        with pytest.raises(NotPicklableError) as caught:
            run_batch(make_agent(server.url, [tool]), ["a", "b"], backend="ray", progress=False)
        assert server.requests == []
    message = str(caught.value)
    assert "tool 'guarded' does not pickle" in message
    assert "closes over `lock` (a _thread.lock)" in message
    assert "backend='local'" in message
    assert ray.is_initialized() == was_running  # no Ray was started for it


def test_the_notebook_shell_in_a_kernel_tool_is_named():
    from IPython.core.interactiveshell import InteractiveShell

    from tinyagent.notebook._kernel_tools import kernel_tools

    agent = make_agent("http://127.0.0.1:9/v1/chat/completions",
                       kernel_tools(InteractiveShell.instance()))  # fmt: skip
    with pytest.raises(NotPicklableError, match=r"closes over `shell` \(the IPython shell"):
        run_batch(agent, ["a"], backend="ray", progress=False)


def test_budget_and_the_lazy_input_are_the_drivers(local_ray: Any):
    pulled = 0
    ahead: list[int] = []

    def inputs() -> Any:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield f"q{i}"

    def check(progress: Recording, counts: ProgressCounts) -> None:
        ahead.append(pulled - (counts.done + counts.failed + counts.not_run))

    options = BatchOptions(concurrency=4, budget=150, progress=Recording(check))
    with ModelServer(Brain(delay=0.05)) as server:
        result = asyncio.run(
            run_ray(make_agent(server.url), inputs(), options, RayOptions(block_size=1))
        )
    assert result.stopped == "budget"
    done = result.counts["done"]
    assert 10 <= done <= 10 + 4  # 10 rows spend the budget; rows already in flight finish
    assert len(server.requests) == done
    assert result.usage["total_tokens"] == 15 * done
    assert len(result) <= done + 1 and pulled <= done + 1 + 4
    assert max(ahead) <= 4 + 1  # never more than `concurrency` rows taken ahead


def test_max_failures_stops_new_rows(local_ray: Any):
    inputs = [f"fail {i}" if i < 8 else f"q{i}" for i in range(40)]
    with ModelServer(Brain()) as server:
        result = run_batch(make_agent(server.url), inputs, concurrency=2, max_failures=3,
                           backend="ray", progress=False)  # fmt: skip
    assert result.stopped == "max_failures"
    assert 3 <= result.counts["failed"] <= 3 + 2
    assert result.counts["not_run"] == 40 - result.counts["failed"]
    assert all(row.error == "not run: max_failures" for row in result.not_run)


def test_the_resume_cache_is_read_and_written_by_the_driver(local_ray: Any, tmp_path: Any):
    cache = tmp_path / "rows.sqlite"
    inputs = [f"q{i}" for i in range(12)]
    with ModelServer(Brain()) as server:
        agent = make_agent(server.url)
        run_batch(agent, inputs[:5], cache=cache, progress=False)  # locally, the first five
        server.clear_requests()
        remote = run_batch(agent, inputs, cache=cache, backend="ray", progress=False)
        assert sorted(first_user(r.body) for r in server.requests) == sorted(inputs[5:])
        assert [row.cached for row in remote] == [True] * 5 + [False] * 7
        assert remote.outputs == [f"echo {q}" for q in inputs]
        server.clear_requests()
        again = run_batch(agent, inputs, cache=cache, progress=False)  # the Ray rows were kept
        assert server.requests == [] and again.counts["cached"] == 12


FAST = ("q0", "q1", "q2", "q3")


def slow(request: dict[str, Any]) -> Reply:
    """Rows ``q0``–``q3`` answer at once; the others stream for ~20 s."""
    prompt = first_user(request)
    if prompt in FAST:
        return Reply(text=f"echo {prompt}", usage=Usage(10, 5))
    return Reply(text="x" * 400, chunk_chars=1, delay=0.05, usage=Usage(10, 5))


def test_cancelling_the_task_cancels_the_ray_calls_and_keeps_what_finished(local_ray: Any):
    inputs = [f"q{i}" for i in range(20)]

    def check(progress: Recording, counts: ProgressCounts) -> None:
        if counts.done >= 4 and counts.running >= 2:
            progress.ready.set()

    progress = Recording(check)
    with ModelServer(slow) as server:

        async def main() -> tuple[BatchResult, float]:
            progress.ready = asyncio.Event()  # type: ignore[attr-defined]
            task = asyncio.ensure_future(arun_batch(
                make_agent(server.url), inputs, concurrency=4, backend="ray", progress=progress
            ))  # fmt: skip
            await asyncio.wait_for(progress.ready.wait(), 120)  # type: ignore[attr-defined]
            cancelled = time.monotonic()
            task.cancel()
            result = await task
            return result, time.monotonic() - cancelled

        result, took = asyncio.run(main())
        streams = [r for r in server.requests if first_user(r.body) not in FAST]
        assert len(streams) >= 2
        assert all(r.client_closed.wait(10) for r in streams)  # the streams in flight closed
    assert result.stopped == "interrupted"
    assert [row.output for row in result[:4]] == ["echo q0", "echo q1", "echo q2", "echo q3"]
    assert len(result) == 20 and result.counts["done"] == 4
    assert all(row.error == "not run: interrupted" for row in result[4:])
    assert took < 10
    assert progress.finished[3] == "interrupted"


def test_stop_from_another_thread_stops_the_ray_batch(local_ray: Any):
    def check(progress: Recording, counts: ProgressCounts) -> None:
        if counts.done >= 4 and progress.stop is not None:
            threading.Thread(target=progress.stop).start()  # the widget's Stop button
            progress.stop = None

    progress = Recording(check)
    with ModelServer(slow) as server:
        result = run_batch(make_agent(server.url), [f"q{i}" for i in range(12)], concurrency=4,
                           backend="ray", progress=progress)  # fmt: skip
    assert result.stopped == "stopped"
    assert result.counts["done"] == 4 and result.counts["not_run"] == 8
    assert all(row.error == "not run: stopped" for row in result[4:])


def test_a_tool_module_the_workers_cannot_import_is_named(local_ray: Any, tmp_path: Any):
    (tmp_path / "driver_only_tools.py").write_text(
        "def lookup(tool_call_id, args, signal, on_update):\n    return None\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import driver_only_tools  # type: ignore[import-not-found]

        tool = AgentTool(name="lookup", description="d", parameters={"type": "object"},
                         execute=driver_only_tools.lookup)  # fmt: skip
        with ModelServer(Brain()) as server:
            with pytest.raises(RuntimeError, match="could not be loaded on a Ray worker") as err:
                run_batch(make_agent(server.url, [tool]), ["a"], backend="ray", progress=False)
            assert server.requests == []
        assert "No module named 'driver_only_tools'" in str(err.value)
        assert "py_modules" in str(err.value)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("driver_only_tools", None)


def crash(tool_call_id: str, args: Any, signal: Any, on_update: Any) -> AgentToolResult:
    os._exit(3)  # the worker process dies mid-row


def test_a_dead_worker_fails_its_rows_and_the_others_carry_on(local_ray: Any):
    tool = AgentTool(name="add", description="d", parameters={"type": "object"}, execute=crash)
    inputs = ["add 1"] + [f"q{i}" for i in range(1, 8)]
    with ModelServer(Brain()) as server:
        result = run_batch(make_agent(server.url, [tool]), inputs, concurrency=2,
                           backend="ray", progress=False)  # fmt: skip
    assert result[0].error is not None and result[0].error.startswith("Ray worker failed:")
    assert result.outputs[1:] == [f"echo q{i}" for i in range(1, 8)]
    assert result.stopped is None and result.counts["failed"] == 1


def test_a_row_that_does_not_pickle_fails_alone_on_one_worker(local_ray: Any):
    inputs: list[Any] = [{"text": "a"}, {"text": "b", "lock": threading.Lock()}, {"text": "c"}]
    options = BatchOptions(prompt="{text}", concurrency=3, progress=False)
    with ModelServer(Brain()) as server:
        result = asyncio.run(
            run_ray(make_agent(server.url), inputs, options, RayOptions(workers=1, block_size=3))
        )
        assert sorted(first_user(r.body) for r in server.requests) == ["a", "c"]
    assert result.outputs == ["echo a", None, "echo c"]
    assert "does not pickle" in str(result[1].error) and result[1].input is inputs[1]


def test_ray_options_from_run_batch_one_worker_small_blocks(local_ray: Any):
    inputs = [f"add {i}" for i in range(8)]
    with ModelServer(Brain()) as server:
        agent = make_agent(server.url, [ADD])
        result = run_batch(agent, inputs, concurrency=4, backend="ray", progress=False,
                           ray={"workers": 1, "block_size": 2})  # fmt: skip
        again = asyncio.run(arun_batch(agent, inputs[:2], backend="ray", progress=False,
                                       ray=RayOptions(workers=1)))  # fmt: skip
    assert [row.error for row in result] == [None] * 8
    # one worker ran every row of a batch (each batch starts its own)
    assert len({_pid(row.output) for row in result}) == 1
    assert len({_pid(row.output) for row in again}) == 1 and again.counts["done"] == 2
    with pytest.raises(ValueError, match="backend='ray'"):
        run_batch(agent, inputs, ray={"workers": 1}, progress=False)
    with pytest.raises(TypeError, match="RayOptions or a dict"):
        run_batch(agent, inputs, backend="ray", ray=2, progress=False)
    with pytest.raises(ValueError, match="workers must be an int"):
        run_batch(agent, inputs, backend="ray", ray={"workers": 0}, progress=False)


def test_without_ray_a_local_one_is_started_for_the_call_and_stopped():
    """The module's last test: it stops the module's Ray to start from none, as a script does."""
    ray.shutdown()
    handler = signal.getsignal(signal.SIGTERM)
    with ModelServer(Brain()) as server:
        result = run_batch(make_agent(server.url), ["q1", "q2", "q3"], concurrency=2,
                           backend="ray", progress=False)  # fmt: skip
    assert result.outputs == ["echo q1", "echo q2", "echo q3"]
    assert not ray.is_initialized()
    assert signal.getsignal(signal.SIGTERM) is handler
