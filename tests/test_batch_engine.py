"""``tinyagent.batch`` end to end against the loopback ModelServer: order under concurrency, the
lazy bounded window, prompts and templates, a fresh agent per row, the blocking/async entry
points, ``agent.map``, results and ``to_pandas`` (docs/batch.md)."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import types
from typing import Any

import pytest
from support.batch_support import last_user, make_agent

from tinyagent import (
    Agent,
    AgentTool,
    AgentToolResult,
    BatchResult,
    Budget,
    TextContent,
    UserMessage,
    arun_batch,
    run_batch,
)
from tinyagent.batch._progress import ProgressCounts
from tinyagent.testing import ModelServer, Reply, ToolCallSpec, Usage

pytestmark = pytest.mark.timeout(60)


def echo(request: dict[str, Any]) -> Reply:
    return Reply(text=f"echo {last_user(request)}", usage=Usage(10, 5))


class Recording:
    """A Progress that records what the engine told it."""

    def __init__(self, check: Any = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.stops: list[Any] = []
        self.max_running = 0
        self.check = check

    def start(self, counts: ProgressCounts) -> None:
        self.calls.append(("start", counts.total))

    def update(self, counts: ProgressCounts) -> None:
        self.max_running = max(self.max_running, counts.running)
        self.calls.append(("update", counts.done + counts.failed))
        if self.check is not None:
            self.check(counts)

    def finish(self, counts: ProgressCounts, stopped: str | None) -> None:
        self.calls.append(("finish", (counts.done, counts.failed, counts.not_run, stopped)))

    def on_stop(self, callback: Any) -> None:
        self.stops.append(callback)


def test_rows_come_back_in_input_order_under_concurrency_and_random_delays():
    rng = random.Random(7)
    lock = threading.Lock()

    def brain(request: dict[str, Any]) -> Reply:
        with lock:
            delay = rng.random() * 0.02
        return Reply(text=f"echo {last_user(request)}", delay=delay, chunk_chars=2,
                     usage=Usage(10, 5, cost=0.001))

    progress = Recording()
    with ModelServer(brain) as server:
        inputs = [f"q{i}" for i in range(40)]
        result = run_batch(make_agent(server.url), inputs, concurrency=8, progress=progress)
    assert isinstance(result, BatchResult)
    assert [row.output for row in result] == [f"echo q{i}" for i in range(40)]
    assert [row.index for row in result] == list(range(40))
    assert [row.input for row in result] == inputs
    assert all(row.error is None and row.attempts == 1 for row in result)
    assert result[3].usage["input"] == 10 and result[3].usage["total_tokens"] == 15
    assert result.usage["total_tokens"] == 600
    assert result.cost == pytest.approx(0.04)
    assert result.counts == {"done": 40, "cached": 0, "failed": 0, "not_run": 0}
    assert result.stopped is None and result.ok
    assert len(server.requests) == 40
    assert 1 < progress.max_running <= 8  # rows really overlapped, never more than 8
    assert progress.calls[0] == ("start", 40)
    assert progress.calls[-1] == ("finish", (40, 0, 0, None))
    assert "40 done" in repr(result) and "600 tokens" in repr(result)


def test_a_generator_is_pulled_lazily_never_more_than_concurrency_rows_ahead():
    pulled = 0

    def rows() -> Any:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield f"q{i}"

    ahead: list[int] = []

    def check(counts: ProgressCounts) -> None:
        ahead.append(pulled - (counts.done + counts.failed + counts.not_run))

    with ModelServer(echo) as server:
        result = run_batch(make_agent(server.url), rows(), concurrency=4, budget=150,
                           progress=Recording(check))
        requests = len(server.requests)
    assert result.stopped == "budget"
    assert max(ahead) <= 4  # rows taken from the generator and not finished
    assert pulled == len(result) < 40  # one refused row at most beyond what ran
    assert result[-1].error == "not run: budget"
    assert requests == len(result) - 1
    assert all(row.output == f"echo q{row.index}" for row in result[:-1])


def test_a_template_key_the_first_row_lacks_fails_before_anything_is_sent():
    with ModelServer(echo) as server:
        agent = make_agent(server.url)
        with pytest.raises(ValueError, match=r"needs \{text\}.*its keys: 'body'"):
            run_batch(agent, [{"body": "hello"}, {"text": "x"}], prompt="Classify: {text}",
                      progress=False)
        with pytest.raises(ValueError, match="not a str: pass prompt="):
            run_batch(agent, [{"text": "x"}], progress=False)
        with pytest.raises(ValueError, match="not a valid str.format template"):
            run_batch(agent, [{"text": "x"}], prompt="Classify: {text", progress=False)
        assert server.requests == []


def test_a_later_row_missing_a_key_is_that_rows_error_naming_the_key():
    with ModelServer(echo) as server:
        rows = [{"text": "a"}, {"txt": "b"}, {"text": "c", "extra": 1}]
        result = run_batch(make_agent(server.url), rows, prompt="Classify: {text}",
                           progress=False)
        assert len(server.requests) == 2
    assert [row.output for row in result] == ["echo Classify: a", None, "echo Classify: c"]
    assert "{text}" in result[1].error and "'txt'" in result[1].error
    assert result[1].attempts == 0 and result[1].status == "failed"
    assert result.errors == [result[1]]


def test_prompt_as_a_function_and_str_rows_in_a_template():
    with ModelServer(echo) as server:
        agent = make_agent(server.url)
        by_function = run_batch(agent, [{"n": 2}, {"n": 3}], prompt=lambda r: f"{r['n']} squared?",
                                progress=False)
        by_template = run_batch(agent, ["cat", "dog"], prompt="Plural of {}: {input}?",
                                progress=False)
    assert by_function.outputs == ["echo 2 squared?", "echo 3 squared?"]
    assert by_template.outputs == ["echo Plural of cat: cat?", "echo Plural of dog: dog?"]


def test_each_row_runs_on_a_fresh_agent_with_the_configuration_never_the_history():
    with ModelServer(echo) as server:
        agent = make_agent(server.url)
        agent.set_system_prompt("You are terse.")
        agent.temperature = 0.25
        agent.max_tokens = 77
        agent.append_message(UserMessage(content=[TextContent(text="an earlier conversation")]))
        before = list(agent.state.messages)
        result = run_batch(agent, ["a", "b", "c"], concurrency=3, progress=False)
        bodies = [r.body for r in server.requests]
    assert result.outputs == ["echo a", "echo b", "echo c"]
    for body in bodies:
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
        assert len(body["messages"]) == 2  # system + this row's prompt, nothing else
        assert body["temperature"] == 0.25
        assert body["max_completion_tokens"] == 77
    assert agent.state.messages == before  # the agent itself is untouched
    assert all(row.messages is None for row in result)


def test_rows_run_their_tool_loops_each_turn_through_the_limiter():
    calls: list[dict[str, Any]] = []

    async def add(tool_call_id: str, args: dict, signal: Any, on_update: Any) -> AgentToolResult:
        calls.append(args)
        return AgentToolResult(content=[TextContent(text=str(args["a"] + args["b"]))])

    tool = AgentTool(name="add", description="Add two numbers", execute=add, parameters={
        "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"]})

    def brain(request: dict[str, Any]) -> Reply:
        last = request["messages"][-1]
        if last["role"] == "tool":
            return Reply(text=f"the sum is {last['content']}", usage=Usage(10, 5))
        a, b = (int(x) for x in last["content"].split("+"))
        return Reply(tool_calls=[ToolCallSpec("add", {"a": a, "b": b})], usage=Usage(10, 5))

    with ModelServer(brain) as server:
        run_batch(make_agent(server.url), ["0+0"], progress=False)  # the HTTP client made first
        server.clear_requests()
        calls.clear()
        agent = make_agent(server.url)
        agent.set_tools([tool])
        result = run_batch(agent, ["1+2", "3+4", "5+6"], concurrency=3,
                           requests_per_minute=600, progress=False)
        times = sorted(r.received_at for r in server.requests)
        tools = [[t["function"]["name"] for t in r.body["tools"]] for r in server.requests]
    assert result.outputs == ["the sum is 3", "the sum is 7", "the sum is 11"]
    assert sorted(c["a"] for c in calls) == [1, 3, 5]
    assert all(row.usage["total_tokens"] == 30 for row in result)  # two turns each
    assert tools == [["add"]] * 6
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    assert times[-1] - times[0] >= 0.4 and gaps[2] >= 0.07, gaps  # every turn's request: 0.1 s


def test_keep_messages_keeps_each_rows_conversation():
    with ModelServer(echo) as server:
        result = run_batch(make_agent(server.url), ["a", "b"], keep_messages=True, progress=False)
    roles = [[m.role for m in row.messages] for row in result]
    assert roles == [["user", "assistant"], ["user", "assistant"]]
    assert result[1].messages[0].content[0].text == "b"


def test_run_batch_inside_a_running_loop_refuses_with_the_async_hint():
    async def inside() -> None:
        run_batch(Agent(), ["a"], progress=False)

    with pytest.raises(RuntimeError, match=r"await arun_batch\(agent, inputs.*await agent\.map"):
        asyncio.run(inside())


def test_agent_map_and_arun_batch_are_the_async_forms():
    with ModelServer(echo) as server:
        agent = make_agent(server.url)

        async def main() -> tuple[BatchResult, BatchResult]:
            mapped = await agent.map(["x", "y"], prompt="Say {}", progress=False)
            direct = await arun_batch(agent, ["z"], progress=False)
            return mapped, direct

        mapped, direct = asyncio.run(main())
    assert mapped.outputs == ["echo Say x", "echo Say y"]
    assert direct.outputs == ["echo z"]


def test_to_pandas_aligns_with_the_input_frames_index():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"text": ["a", "b", "c"], "lang": ["en", "fr", "de"]},
                         index=["r1", "r2", "r3"])
    with ModelServer(echo) as server:
        result = run_batch(make_agent(server.url), frame, prompt="{text} in {lang}",
                           progress=False)
    assert result[0].input == {"text": "a", "lang": "en"}
    table = result.to_pandas()
    assert list(table.index) == ["r1", "r2", "r3"]
    assert list(table["output"]) == ["echo a in en", "echo b in fr", "echo c in de"]
    assert {"error", "attempts", "tokens", "cost", "duration", "cached"} <= set(table.columns)
    assert "input" not in table.columns
    joined = frame.join(table)
    assert joined.loc["r2", "output"] == "echo b in fr" and joined.loc["r2", "lang"] == "fr"


def test_to_pandas_of_a_list_has_an_input_column():
    pytest.importorskip("pandas")
    with ModelServer(echo) as server:
        table = run_batch(make_agent(server.url), ["a", "b"], progress=False).to_pandas()
    assert list(table.index) == [0, 1]
    assert list(table["input"]) == ["a", "b"]
    assert list(table["tokens"]) == [15, 15]


def test_pandas_is_not_imported_for_list_inputs():
    code = (
        "import sys\n"
        "from tinyagent.batch._rows import RowSource\n"
        "list(RowSource(['a', {'b': 1}]))\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_empty_inputs_and_bad_options():
    with ModelServer(echo) as server:
        agent = make_agent(server.url)
        result = run_batch(agent, [], progress=False)
        assert len(result) == 0 and result.stopped is None
        with pytest.raises(TypeError, match="not a single str"):
            run_batch(agent, "one prompt", progress=False)
        with pytest.raises(ValueError, match="concurrency"):
            run_batch(agent, ["a"], concurrency=0, progress=False)
        with pytest.raises(TypeError, match="budget"):
            run_batch(agent, ["a"], budget="lots", progress=False)
        with pytest.raises(ValueError, match="backend"):
            run_batch(agent, ["a"], backend="spark", progress=False)
        assert server.requests == []
    with pytest.raises(RuntimeError, match="No model configured"):
        run_batch(Agent(), ["a"], progress=False)
    assert Budget.of(10) == Budget(tokens=10) and Budget.of(0.5) == Budget(usd=0.5)


def test_backend_ray_is_loaded_lazily(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "tinyagent.batch._ray", None)  # not installed
    with pytest.raises(ImportError, match=r"pip install 'tiny-agent-os\[ray\]'"):
        run_batch(Agent(), ["a"], backend="ray", progress=False)

    calls: list[Any] = []

    async def run_ray(agent: Any, inputs: Any, options: Any) -> BatchResult:
        calls.append((agent, inputs, options))
        return BatchResult([])

    fake = types.ModuleType("tinyagent.batch._ray")
    fake.run_ray = run_ray  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tinyagent.batch._ray", fake)
    agent = Agent()
    result = run_batch(agent, ["a"], backend="ray", concurrency=5, progress=False)
    assert len(result) == 0
    assert calls[0][0] is agent and calls[0][1] == ["a"]
    assert calls[0][2].concurrency == 5 and calls[0][2].backend == "ray"
    assert asyncio.run(agent.map(["b"], backend="ray", progress=False)) is not result
    assert calls[1][1] == ["b"]

    async def no_ray(agent: Any, inputs: Any, options: Any) -> BatchResult:
        raise ModuleNotFoundError("No module named 'ray'", name="ray")  # Ray imported late

    fake.run_ray = no_ray  # type: ignore[attr-defined]
    with pytest.raises(ImportError, match=r"pip install 'tiny-agent-os\[ray\]'"):
        run_batch(agent, ["a"], backend="ray", progress=False)


def test_the_gc_threshold_is_raised_while_rows_run_and_put_back_after():
    import gc

    from tinyagent.batch import _runner

    seen: list[tuple[int, ...]] = []

    def reply(request: dict[str, Any]) -> Reply:
        seen.append(gc.get_threshold())  # the server runs in this process: same gc
        return Reply(text="ok")

    before = gc.get_threshold()
    assert _runner.GC_THRESHOLD is not None and before[0] < _runner.GC_THRESHOLD
    with ModelServer(reply) as server:
        agent = make_agent(server.url)
        result = run_batch(agent, ["a", "b"], progress=False)
    assert result.outputs == ["ok", "ok"]
    assert seen == [(_runner.GC_THRESHOLD, *before[1:])] * 2
    assert gc.get_threshold() == before


def test_gc_relief_nests_and_leaves_a_threshold_changed_meanwhile():
    import gc

    from tinyagent.batch._runner import GC_THRESHOLD, gc_relief

    before = gc.get_threshold()
    try:
        with gc_relief():
            assert gc.get_threshold()[0] == GC_THRESHOLD
            with gc_relief():
                assert gc.get_threshold()[0] == GC_THRESHOLD
            assert gc.get_threshold()[0] == GC_THRESHOLD  # the outer batch still runs
        assert gc.get_threshold() == before
        with gc_relief():
            gc.set_threshold(1234, *before[1:])  # somebody else's setting
        assert gc.get_threshold()[0] == 1234
    finally:
        gc.set_threshold(*before)
