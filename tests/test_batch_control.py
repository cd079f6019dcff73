"""``tinyagent.batch``: how a batch ends early and how it resumes, against the loopback
ModelServer: token and dollar budgets, the SQLite resume cache (a rerun sends nothing, a changed
configuration misses it, failures are tried again), task cancellation and Ctrl-C returning the
partial result, and the progress's Stop (docs/batch.md)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel
from support.batch_support import last_user, make_agent

from tinyagent import BatchResult, Budget, arun_batch, run_batch
from tinyagent.batch._progress import ProgressCounts
from tinyagent.testing import Fault, ModelServer, Reply, Usage

pytestmark = pytest.mark.timeout(60)


def echo(request: dict[str, Any]) -> Reply:
    return Reply(text=f"echo {last_user(request)}", usage=Usage(10, 5, cost=0.01))


def slow(request: dict[str, Any]) -> Reply:
    """Rows q0 and q1 answer at once; every other row streams for about 3 s."""
    text = last_user(request)
    if text in ("q0", "q1"):
        return Reply(text=f"echo {text}")
    return Reply(text="x" * 300, chunk_chars=1, delay=0.01)


class Recording:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.finished: tuple[ProgressCounts, str | None] | None = None
        self.callbacks: list[Any] = []

    def start(self, counts: ProgressCounts) -> None:
        self.calls.append("start")

    def update(self, counts: ProgressCounts) -> None:
        self.calls.append("update")

    def finish(self, counts: ProgressCounts, stopped: str | None) -> None:
        self.calls.append("finish")
        self.finished = (counts, stopped)

    def on_stop(self, callback: Any) -> None:
        self.callbacks.append(callback)


# -- budget ---------------------------------------------------------------------------------------


def test_a_token_budget_stops_new_rows_once_reached():
    with ModelServer(echo) as server:
        result = run_batch(make_agent(server.url), [f"q{i}" for i in range(10)], concurrency=1,
                           budget=40, progress=False)  # 15 tokens a row
        assert len(server.requests) == 3
    assert result.stopped == "budget"
    assert result.outputs[:3] == ["echo q0", "echo q1", "echo q2"]
    assert [row.error for row in result[3:]] == ["not run: budget"] * 7
    assert len(result) == 10 and result.usage["total_tokens"] == 45


def test_a_dollar_budget_counts_the_models_reported_cost():
    with ModelServer(echo) as server:
        by_float = run_batch(make_agent(server.url), [f"q{i}" for i in range(10)],
                             concurrency=1, budget=0.025, progress=False)
        by_budget = run_batch(make_agent(server.url), [f"q{i}" for i in range(10)],
                              concurrency=1, budget=Budget(usd=0.015), progress=False)
    assert by_float.counts["done"] == 3 and by_float.stopped == "budget"
    assert by_float.cost == pytest.approx(0.03) and by_float[0].cost == pytest.approx(0.01)
    assert by_budget.counts["done"] == 2


# -- resume cache ---------------------------------------------------------------------------------


def test_a_rerun_with_the_cache_sends_nothing_for_finished_rows(tmp_path: Any):
    path = tmp_path / "run.sqlite"
    rows = [f"q{i}" for i in range(4)]
    with ModelServer(echo) as server:
        agent = make_agent(server.url)
        first = run_batch(agent, rows, cache=str(path), progress=False)
        assert len(server.requests) == 4
        with sqlite3.connect(path) as db:  # committed as each row finished
            assert db.execute("SELECT COUNT(*) FROM batch_rows").fetchone()[0] == 4
        progress = Recording()
        second = run_batch(make_agent(server.url), rows, cache=path, progress=progress)
        assert len(server.requests) == 4  # nothing sent
        agent.set_system_prompt("Be brief.")
        third = run_batch(agent, rows, cache=path, progress=False)
        assert len(server.requests) == 8  # another configuration: every row misses
    assert second.outputs == first.outputs == third.outputs
    assert all(row.cached and row.attempts == 0 and row.cost == 0 for row in second)
    assert second.counts == {"done": 4, "cached": 4, "failed": 0, "not_run": 0}
    assert not any(row.cached for row in third)
    assert "4 from cache" in repr(second)
    assert progress.finished is not None and progress.finished[0].cached == 4


def test_failed_rows_are_not_cached_and_are_tried_again(tmp_path: Any):
    path = tmp_path / "run.sqlite"
    failing = {"q1"}

    def brain(request: dict[str, Any]) -> Any:
        text = last_user(request)
        return Reply(fault=Fault.http(401)) if text in failing else f"echo {text}"

    with ModelServer(brain) as server:
        first = run_batch(make_agent(server.url), ["q0", "q1", "q2"], cache=path, progress=False)
        failing.clear()
        second = run_batch(make_agent(server.url), ["q0", "q1", "q2"], cache=path,
                           progress=False)
        reruns = [last_user(r.body) for r in server.requests[3:]]
    assert first.outputs == ["echo q0", None, "echo q2"]
    assert second.outputs == ["echo q0", "echo q1", "echo q2"]
    assert reruns == ["q1"]
    assert [row.cached for row in second] == [True, False, True]


def test_the_cache_keeps_output_type_instances_and_keys_on_the_schema(tmp_path: Any):
    class Answer(BaseModel):
        value: int

    class Other(BaseModel):
        value: int
        unit: str = "m"

    path = tmp_path / "typed.sqlite"
    with ModelServer('{"value": 7}') as server:
        agent = make_agent(server.url)
        run_batch(agent, ["a", "b"], output_type=Answer, cache=path, progress=False)
        again = run_batch(agent, ["a", "b"], output_type=Answer, cache=path, progress=False)
        assert len(server.requests) == 2
        run_batch(agent, ["a", "b"], output_type=Other, cache=path, progress=False)
        assert len(server.requests) == 4
    assert again.outputs == [Answer(value=7), Answer(value=7)]


# -- interrupt and stop ---------------------------------------------------------------------------


def test_cancelling_the_awaiting_task_returns_the_partial_result():
    with ModelServer(slow) as server:
        agent = make_agent(server.url)

        async def main() -> BatchResult:
            task = asyncio.ensure_future(
                arun_batch(agent, [f"q{i}" for i in range(8)], concurrency=3, progress=False)
            )
            while len(server.requests) < 5:  # q4 started: q0 and q1 have finished
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            task.cancel()  # what the kernel's interrupt does to a cell's task
            return await task

        result = asyncio.run(main())
        assert server.wait_for_disconnect(timeout=5)  # in-flight streams were closed
    assert result.stopped == "interrupted"
    assert result.outputs[:2] == ["echo q0", "echo q1"]
    assert [row.error for row in result[2:5]] == ["not run: interrupted"] * 3  # in flight
    assert [row.error for row in result[5:]] == ["not run: interrupted"] * 3  # never started
    assert len(result) == 8
    assert len(server.requests) == 5


def test_ctrl_c_in_run_batch_returns_the_partial_result():
    with ModelServer(slow) as server:
        agent = make_agent(server.url)
        fired = threading.Event()

        def interrupt() -> None:
            while len(server.requests) < 5:
                threading.Event().wait(0.01)
            threading.Event().wait(0.05)
            fired.set()
            os.kill(os.getpid(), signal.SIGINT)

        killer = threading.Thread(target=interrupt, daemon=True)
        killer.start()
        result = run_batch(agent, [f"q{i}" for i in range(8)], concurrency=3, progress=False)
        killer.join(5)
    assert fired.is_set()
    assert result.stopped == "interrupted"
    assert result.outputs[:2] == ["echo q0", "echo q1"]
    assert {row.error for row in result[2:]} == {"not run: interrupted"}


def test_the_progress_stop_button_stops_the_batch_from_another_thread():
    progress = Recording()

    def brain(request: dict[str, Any]) -> Reply:
        text = last_user(request)
        if text == "q4":  # on the server's thread, like a widget's comm callback
            for callback in progress.callbacks:
                callback()
        return slow(request)

    with ModelServer(brain) as server:
        result = run_batch(make_agent(server.url), [f"q{i}" for i in range(10)], concurrency=3,
                           progress=progress)
    assert result.stopped == "stopped"
    assert result.outputs[:2] == ["echo q0", "echo q1"]
    assert {row.error for row in result[2:]} == {"not run: stopped"}
    assert len(result) == 10
    assert progress.calls[0] == "start" and progress.calls[-1] == "finish"
    assert progress.calls.count("finish") == 1
    counts, stopped = progress.finished  # type: ignore[misc]
    assert stopped == "stopped"
    assert (counts.done, counts.not_run, counts.running) == (2, 8, 0)
    callback = progress.callbacks[0]
    callback()  # a late press after the end is harmless


def test_a_broken_progress_never_stops_the_batch():
    class Broken(Recording):
        def update(self, counts: ProgressCounts) -> None:
            raise RuntimeError("display gone")

    with ModelServer(echo) as server:
        result = run_batch(make_agent(server.url), ["a", "b"], progress=Broken())
    assert result.outputs == ["echo a", "echo b"]


_KILLED_CHILD = """
import sys
from tinyagent import Agent, AgentOptions, run_batch
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
agent.set_model(OpenAICompatModel(provider="openai", id="batch-test", base_url=sys.argv[1]))
run_batch(agent, [f"q{i}" for i in range(6)], concurrency=3, cache=sys.argv[2], progress=False)
"""


def test_rows_finished_before_a_kill_9_are_kept_by_the_cache(tmp_path: Any):
    path = tmp_path / "killed.sqlite"
    with ModelServer(slow) as server:  # q0 and q1 finish, q2.. stream for seconds
        child = subprocess.Popen([sys.executable, "-c", _KILLED_CHILD, server.url, str(path)])
        try:
            deadline = time.monotonic() + 30
            while len(server.requests) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
            child.kill()  # SIGKILL: no cleanup of any kind
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
        server.brain = echo
        server.clear_requests()
        result = run_batch(make_agent(server.url), [f"q{i}" for i in range(6)], cache=path,
                           progress=False)
        rerun = sorted(last_user(r.body) for r in server.requests)
    assert [row.cached for row in result] == [True, True, False, False, False, False]
    assert rerun == ["q2", "q3", "q4", "q5"]
    assert result.outputs[:2] == ["echo q0", "echo q1"]
