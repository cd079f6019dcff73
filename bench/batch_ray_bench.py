"""``run_batch(backend="ray")`` with 2 workers beside the local backend: rows/s and CPU per row.

Targets: docs/batch.md#ray-backend and bench/README.md.

A loopback model server in its own process answers every request with the same short reply,
at once (``instant``: the per-row overhead) or after ``--delay`` seconds (``paced``: rows that
wait on the model). Each round runs the same rows on the local backend and on Ray (one local
Ray, ``num_cpus=2``, started once; the two workers are started per batch, as ``run_batch`` does).

While a batch runs, a thread samples every 0.1 s the rows done and the CPU time (user + system,
from /proc) of this process and, for Ray, of every process of the local Ray (GCS, raylet,
workers); rows/s and CPU per row are taken between 10 % and 90 % of the rows, so the workers'
start (timed apart: "first row") is not in them.

    python3 bench/batch_ray_bench.py [--rows 3000] [--paced-rows 1500] [--concurrency 32]
        [--rounds 3] [--block-sizes default,1,16] [--scenarios instant,paced]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ray  # noqa: E402

from tinyagent import Agent, AgentOptions  # noqa: E402
from tinyagent.alchemy_provider import (  # noqa: E402
    OpenAICompatModel,
    stream_alchemy_openai_completions,
)
from tinyagent.batch._engine import BatchOptions, Engine  # noqa: E402
from tinyagent.batch._ray import RayExecutor, RayOptions, check_picklable  # noqa: E402
from tinyagent.testing import Reply, Usage, spawn_server  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found |= {child} | descendants(child)
    return found


class Sampler:
    """The Progress of a batch: notes the first row, and samples (time, done, CPU) on a thread.
    CPU is summed over this process and its descendants but ``skip`` (the model server)."""

    def __init__(self, skip: set[int], tree: bool) -> None:
        self.skip, self.tree = skip, tree
        self.done = 0
        self.first = 0.0
        self.samples: list[tuple[float, int, float]] = []
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def cpu(self) -> float:
        """CPU seconds so far (a process that has exited keeps what it was last seen using)."""
        pids = {os.getpid()} | (descendants(os.getpid()) - self.skip if self.tree else set())
        for pid in pids:
            self._seen[pid] = max(self._seen.get(pid, 0.0), proc_cpu(pid))
        return sum(self._seen.values())

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.samples.append((time.perf_counter(), self.done, self.cpu()))

    def start(self, counts: Any) -> None:
        self.started = time.perf_counter()
        self.samples.append((self.started, 0, self.cpu()))
        self._thread.start()

    def update(self, counts: Any) -> None:
        self.done = counts.done
        if counts.done and not self.first:
            self.first = time.perf_counter() - self.started

    def finish(self, counts: Any, stopped: str | None) -> None:
        self.done = counts.done
        self.samples.append((time.perf_counter(), self.done, self.cpu()))
        self._stop.set()

    def on_stop(self, callback: Any) -> None:
        pass

    def figures(self, rows: int) -> dict[str, float]:
        low = next(s for s in self.samples if s[1] >= rows * 0.1)
        high = next(s for s in self.samples if s[1] >= rows * 0.9)
        done, seconds, cpu = high[1] - low[1], high[0] - low[0], high[2] - low[2]
        return {
            "rate": done / seconds,
            "cpu_row": cpu / done * 1e3,
            "cpu_core": cpu / seconds,
            "first": self.first,
            "wall": self.samples[-1][0] - self.samples[0][0],
        }


def make_agent(url: str) -> Agent:
    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
    agent.set_model(OpenAICompatModel(provider="openai", id="bench", base_url=url))
    return agent


async def run_local(agent: Agent, rows: list[str], concurrency: int, skip: set[int]) -> Any:
    sampler = Sampler(skip, tree=False)
    options = BatchOptions(concurrency=concurrency, progress=sampler)
    result = await Engine(agent, rows, options).run()
    assert result.counts["done"] == len(rows), result
    return sampler.figures(len(rows))


async def run_on_ray(
    agent: Agent, rows: list[str], concurrency: int, block_size: int | None, skip: set[int]
) -> Any:
    """``run_ray`` spelled out, so the workers' CPU is read before they are killed."""
    executor = RayExecutor(RayOptions(workers=2, block_size=block_size))
    sampler = Sampler(skip, tree=True)
    engine = Engine(agent, rows, BatchOptions(concurrency=concurrency, progress=sampler), executor)
    executor.payload = check_picklable(engine.config, engine.settings)
    try:
        result = await engine.run()
    finally:
        executor.close()
    assert result.counts["done"] == len(rows), result
    return sampler.figures(len(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paced-rows", type=int, default=1500)
    parser.add_argument("--delay", type=float, default=0.1,
                        help="paced: seconds between the reply's events (6 events: ~0.5 s a row)")
    parser.add_argument("--block-sizes", default="default,1,16", help="Ray block sizes to run")
    parser.add_argument("--scenarios", default="instant,paced")
    args = parser.parse_args()

    for attempt in (1, 2):  # a loaded machine can make Ray's own start time out
        try:
            started = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            print(f"ray.init: {time.perf_counter() - started:.1f} s", flush=True)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    blocks = [None if b == "default" else int(b) for b in args.block_sizes.split(",")]
    replies = {
        "instant": Reply(text="ok " * 5, usage=Usage(10, 5)),
        "paced": Reply(text="ok " * 5, usage=Usage(10, 5), delay=args.delay),
    }
    try:
        for name in args.scenarios.split(","):
            server = spawn_server(replies[name], max_seconds=3600)
            skip = {server.pid}
            agent = make_agent(server.url)
            count = args.rows if name == "instant" else args.paced_rows
            rows = [f"row {i}" for i in range(count)]
            runs: dict[str, list[dict[str, float]]] = {}
            for _ in range(args.rounds):  # interleaved
                runs.setdefault("local", []).append(
                    asyncio.run(run_local(agent, rows, args.concurrency, skip))
                )
                for block in blocks:
                    runs.setdefault(f"ray, block_size={block or 'default'}", []).append(
                        asyncio.run(run_on_ray(agent, rows, args.concurrency, block, skip))
                    )
            server.stop()
            report(name, len(rows), args, runs)
    finally:
        ray.shutdown()


def report(name: str, rows: int, args: Any, runs: dict[str, list[dict[str, float]]]) -> None:
    print(f"\n{name}: {rows} rows, concurrency {args.concurrency}, medians of {args.rounds}")
    print("| backend | rows/s | CPU per row | CPU cores busy | first row | whole batch |")
    print("|---|---|---|---|---|---|")
    for label, results in runs.items():
        med = {key: statistics.median(r[key] for r in results) for key in results[0]}
        print(f"| {label} | {med['rate']:.0f} | {med['cpu_row']:.2f} ms | {med['cpu_core']:.2f} "
              f"| {med['first']:.2f} s | {med['wall']:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
