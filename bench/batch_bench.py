"""One agent over many rows: ``tinyagent.batch.arun_batch`` beside the openai SDK written by hand.

Targets (bench/README.md, "Batch runs at concurrency 1,000"): tinyagent's client CPU per row at
least 20x below the openai SDK loop's, and its peak RSS at 10,000 rows at most 1.5x its peak RSS
at 1,000 rows.

Every row is a tool call and then an answer: the loopback model server of ``tinyagent.testing``,
in its own process (its CPU is not the client's), answers the first request of a row with one
``lookup`` call and the request carrying the tool result with a 40-token answer, both streamed
one ~4-character token every 20 ms (50 tokens/s per stream; ``bench/drivers/batch_brain.py``).
Each driver runs in a fresh process of its own (``--child``), one event loop, 1,000 rows in
flight:

- ``tinyagent``: ``await arun_batch(agent, rows, concurrency=1000, progress=False)``, an Agent on
  ``stream_alchemy_openai_completions`` with an ``OpenAICompatModel(provider="local")`` and one
  ``lookup`` tool;
- ``naive``: the same Agent and tool without the batch engine: a fresh Agent per row,
  ``asyncio.Semaphore(1000)`` and ``asyncio.gather`` over ``agent.prompt_text(row)``;
- ``openai``: ``AsyncOpenAI(base_url=..., api_key="x")``, ``asyncio.Semaphore(1000)`` and the
  usual manual tool loop (``stream=True``, tool-call deltas accumulated by index, the tool run,
  a second streamed request, the answer collected).

Reported per driver: rows/s (wall clock of the batch), client CPU per row (``time.process_time``
around the batch: every thread of the process, the Rust core's included), peak RSS
(``ru_maxrss``), import time; and the server process's CPU over the same run (from /proc), which
shows when the server, not the client, is what paces the batch.

    python3 -m pip install -q openai   # for the openai driver (not a dependency of the package)
    python3 bench/batch_bench.py --rows 10000 --concurrency 1000 --rss-rows 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DRIVERS = Path(__file__).resolve().parent / "drivers"
TICK = os.sysconf("SC_CLK_TCK")

PROMPT = "What is the weather in city #{}? Use the lookup tool."
TOOL_RESULT = '{"city": "Oslo", "temperature": 21, "unit": "celsius"}'
LOOKUP_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["city"],
}


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def lookup(city: str, unit: str = "celsius") -> str:
    """The tool both drivers run: cheap, so the figures are the clients' own cost."""
    return TOOL_RESULT


# -- drivers (each runs in a fresh child process) ---------------------------------------------

def lookup_agent(url: str) -> tuple[Any, Any, list[int]]:
    """The model and ``lookup`` tool of both tinyagent drivers, and the tool's call counter."""
    from tinyagent.agent_types import AgentTool, AgentToolResult, TextContent
    from tinyagent.alchemy_provider import OpenAICompatModel

    calls = [0]

    async def execute(tool_call_id: str, args: dict[str, Any], signal: Any,
                      on_update: Any) -> AgentToolResult:
        calls[0] += 1
        return AgentToolResult(content=[TextContent(text=lookup(**args))])

    model = OpenAICompatModel(provider="local", id="bench", base_url=url)
    tool = AgentTool(name="lookup", description="Weather of a city", parameters=LOOKUP_SCHEMA,
                     execute=execute)
    return model, tool, calls


def new_agent(model: Any, tool: Any) -> Any:
    from tinyagent import Agent, AgentOptions
    from tinyagent.alchemy_provider import stream_alchemy_openai_completions

    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
    agent.set_model(model)
    agent.set_tools([tool])
    return agent


async def run_tinyagent(url: str, rows: list[str], concurrency: int) -> dict[str, Any]:
    from tinyagent.batch import arun_batch

    model, tool, calls = lookup_agent(url)
    agent = new_agent(model, tool)
    cpu, wall = time.process_time(), time.perf_counter()
    result = await arun_batch(agent, rows, concurrency=concurrency, progress=False)
    elapsed, spent = time.perf_counter() - wall, time.process_time() - cpu
    outputs = list(result.outputs)
    return {"wall": elapsed, "cpu": spent, "done": result.counts["done"], "tool_calls": calls[0],
            "outputs": outputs}


async def run_naive(url: str, rows: list[str], concurrency: int) -> dict[str, Any]:
    """The loop a person writes without ``run_batch``: a fresh Agent per row, a semaphore and
    ``asyncio.gather`` (what the batch engine must not be slower than)."""
    model, tool, calls = lookup_agent(url)
    semaphore = asyncio.Semaphore(concurrency)

    async def row(prompt: str) -> str:
        async with semaphore:
            return await new_agent(model, tool).prompt_text(prompt)

    cpu, wall = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(row(r) for r in rows), return_exceptions=True)
    elapsed, spent = time.perf_counter() - wall, time.process_time() - cpu
    outputs = [r if isinstance(r, str) else None for r in results]
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return {"wall": elapsed, "cpu": spent, "done": sum(o is not None for o in outputs),
            "tool_calls": calls[0], "outputs": outputs, "errors": errors[:3]}


async def run_openai(base_url: str, rows: list[str], concurrency: int) -> dict[str, Any]:
    from openai import AsyncOpenAI

    # no retries (a retried row would cost twice) and 600 s for every phase: the default 5 s
    # connect timeout fails rows while 1,000 connections open on a busy loop
    client = AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=600.0)
    tools = [{"type": "function", "function": {"name": "lookup", "description": "Weather of a city",
                                               "parameters": LOOKUP_SCHEMA}}]
    semaphore = asyncio.Semaphore(concurrency)
    calls = 0

    async def row(prompt: str) -> str:
        nonlocal calls
        async with semaphore:
            messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
            for _turn in range(5):
                stream = await client.chat.completions.create(
                    model="bench", messages=messages, tools=tools, stream=True,
                    stream_options={"include_usage": True})
                text: list[str] = []
                pending: dict[int, dict[str, str]] = {}
                async for chunk in stream:
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    if delta.content:
                        text.append(delta.content)
                    for part in delta.tool_calls or ():
                        slot = pending.setdefault(part.index, {"id": "", "name": "",
                                                               "arguments": ""})
                        if part.id:
                            slot["id"] = part.id
                        if part.function is not None:
                            if part.function.name:
                                slot["name"] += part.function.name
                            if part.function.arguments:
                                slot["arguments"] += part.function.arguments
                if not pending:
                    return "".join(text)
                messages.append({"role": "assistant", "content": "".join(text) or None,
                                 "tool_calls": [
                                     {"id": c["id"], "type": "function",
                                      "function": {"name": c["name"],
                                                   "arguments": c["arguments"]}}
                                     for c in pending.values()]})
                for call in pending.values():
                    calls += 1
                    output = lookup(**json.loads(call["arguments"]))
                    messages.append({"role": "tool", "tool_call_id": call["id"],
                                     "content": output})
            raise RuntimeError("tool loop did not end")

    cpu, wall = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(row(r) for r in rows), return_exceptions=True)
    elapsed, spent = time.perf_counter() - wall, time.process_time() - cpu
    await client.close()
    outputs = [r if isinstance(r, str) else None for r in results]
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return {"wall": elapsed, "cpu": spent, "done": sum(o is not None for o in outputs),
            "tool_calls": calls, "outputs": outputs, "errors": errors[:3]}


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads by name ("main" for the main thread), and the
    kernel's share of each ("<name> (kernel)": system calls, wake-ups, the TCP receive path)."""
    spent: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = "main" if tid == str(os.getpid()) else stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        spent[name] = spent.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
        spent[f"{name} (kernel)"] = spent.get(f"{name} (kernel)", 0.0) + int(fields[12]) / TICK
    return spent


def child(args: argparse.Namespace) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    if args.child == "tinyagent":
        import tinyagent.batch  # noqa: F401
        if args.every_event:
            import tinyagent.batch._runner as runner

            runner.ENDS_ONLY = False
        target, url = run_tinyagent, args.url
    elif args.child == "naive":
        import tinyagent  # noqa: F401
        target, url = run_naive, args.url
    else:
        import openai  # noqa: F401
        target, url = run_openai, args.base_url
    imported = {"import_wall": time.perf_counter() - t0, "import_cpu": time.process_time() - c0}
    rows = [PROMPT.format(i) for i in range(args.rows)]
    out = asyncio.run(target(url, rows, args.concurrency))
    outputs = out.pop("outputs")
    expected = args.expected
    out["correct"] = sum(o == expected for o in outputs)
    out.update(imported)
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["cpu_total"] = time.process_time()
    out["threads"] = thread_cpu()
    print(json.dumps(out), flush=True)


# -- the parent: the server, then one fresh process per driver run ----------------------------

def run_driver(name: str, server: Any, rows: int, concurrency: int,
               expected: str, every_event: bool = False) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name,
               "--url", server.url, "--base-url", server.base_url, "--rows", str(rows),
               "--concurrency", str(concurrency), "--expected", expected]
    if every_event:
        command.append("--every-event")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    server_cpu = proc_cpu(server.pid)
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    server_spent = proc_cpu(server.pid) - server_cpu
    if done.returncode != 0:
        raise RuntimeError(f"{name} driver failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(driver=name, rows=rows, concurrency=concurrency, server_cpu=server_spent)
    return result


def describe(r: dict[str, Any]) -> str:
    return (f"{r['driver']:>9} rows={r['rows']:>6} c={r['concurrency']}: "
            f"done {r['done']} (answers right {r['correct']}, tool calls {r['tool_calls']}), "
            f"{r['rows'] / r['wall']:.0f} rows/s in {r['wall']:.1f} s, "
            f"CPU {r['cpu'] / r['rows'] * 1e3:.3f} ms/row ({r['cpu']:.1f} s), "
            f"peak RSS {r['maxrss_mb']:.0f} MB, import {r['import_wall']:.2f} s, "
            f"server CPU {r['server_cpu']:.1f} s; threads' CPU (whole process) "
            + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(r.get("threads", {}).items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--rss-rows", type=int, default=1000,
                        help="also run tinyagent on this many rows, for the RSS ratio (0: no)")
    parser.add_argument("--drivers", default="tinyagent,openai")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", help="write every run's figures to this file")
    parser.add_argument("--every-event", action="store_true",
                        help="tinyagent rows read every token (tinyagent.batch._runner.ENDS_ONLY "
                             "= False), as before rows delivered only their ends")
    # child mode
    parser.add_argument("--child", choices=["tinyagent", "naive", "openai"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--expected", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sys.path[:0] = [str(REPO), str(DRIVERS)]
    import batch_brain

    from tinyagent.testing import spawn_server

    expected = batch_brain.ANSWER_TURN.text
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(DRIVERS), env.get("PYTHONPATH", "")) if p)
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    runs: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M")
    print(f"{started}, loadavg {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs", flush=True)
    with spawn_server("batch_brain:brain", env=env, max_seconds=7200) as server:
        for _round in range(args.rounds):
            plan = [(d, args.rows) for d in drivers]
            if args.rss_rows and "tinyagent" in drivers:
                plan.insert(0, ("tinyagent", args.rss_rows))
            for name, rows in plan:
                result = run_driver(name, server, rows, args.concurrency, expected,
                                    args.every_event)
                result["loadavg"] = os.getloadavg()[0]
                runs.append(result)
                print(describe(result), f"(loadavg {result['loadavg']:.1f})", flush=True)
    print()
    full = {r["driver"]: r for r in runs if r["rows"] == args.rows}
    if "tinyagent" in full and "openai" in full:
        ours, theirs = full["tinyagent"], full["openai"]
        ratio = (theirs["cpu"] / theirs["rows"]) / (ours["cpu"] / ours["rows"])
        print(f"CPU per row: openai SDK loop / tinyagent = {ratio:.1f}x (target >= 20x)")
    small = [r for r in runs if r["driver"] == "tinyagent" and r["rows"] == args.rss_rows]
    if small and "tinyagent" in full and args.rss_rows != args.rows:
        growth = full["tinyagent"]["maxrss_mb"] / small[-1]["maxrss_mb"]
        print(f"tinyagent peak RSS {args.rows} rows / {args.rss_rows} rows = {growth:.2f}x "
              f"(target <= 1.5x)")
        extra = full["tinyagent"]["cpu"] - small[-1]["cpu"]
        print(f"tinyagent CPU per extra row ({args.rss_rows} -> {args.rows} rows, one-time "
              f"costs such as the first tool validation's jsonschema import cancel out): "
              f"{extra / (args.rows - args.rss_rows) * 1e3:.3f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"started": started, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
