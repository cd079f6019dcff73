#!/usr/bin/env python3
"""Many slow streams on one asyncio loop (R11): completion, fairness, executor, memory.

R11 is in docs/wire.md#requirements; the figures are in bench/README.md.

N concurrent ``stream_alchemy_openai_completions`` streams, each ``--tokens`` deltas paced at
``--rate`` tokens/s by the loopback server (``tinyagent.testing``, in its own process), all on one
event loop. Meanwhile a probe task runs ``await asyncio.to_thread(int)`` every 100 ms: its latency
shows whether waiting streams hold default-executor slots. Uses only the public provider API, so
it also measures tiny-agent-os 1.2.29 when run with that package's interpreter and ``--url``::

    python3 bench/concurrent_streams.py --streams 1000 --tokens 20 --rate 20
    python3 -m tinyagent.testing --port 8766 --script /tmp/paced.json &   # for another venv
    /tmp/bench-venv/bin/python bench/concurrent_streams.py --url http://127.0.0.1:8766/v1/chat/completions
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, "") and "--url" not in sys.argv:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # source checkout

from tinyagent.agent_types import Context, SimpleStreamOptions, TextContent, UserMessage
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions


async def one_stream(url: str, tokens: int, opened: list[float]) -> dict[str, Any]:
    model = OpenAICompatModel(provider="local", id="paced", base_url=url)
    context = Context(messages=[UserMessage(content=[TextContent(text="go")])])
    started = time.monotonic()
    # A dummy key: the loopback server ignores it, and tiny-agent-os 1.2.29 insists on one.
    options = SimpleStreamOptions(api_key="bench")
    response = await stream_alchemy_openai_completions(model, context, options)
    opened.append(time.monotonic())
    chars, first, last, worst_gap, error = 0, None, None, 0.0, None
    async for event in response:
        if event.type == "text_delta":
            now = time.monotonic()
            if first is None:
                first = now - started
            else:
                worst_gap = max(worst_gap, now - last)
            last = now
            chars += len(event.delta or "")
        elif event.type == "error":
            error = getattr(event.error, "error_message", None) or str(event.reason)
    return {
        "tokens": chars // 4,
        "first": first,
        "worst_gap": worst_gap,
        "error": error,
        "total": time.monotonic() - started,
    }


async def executor_probe(
    stop: asyncio.Event, samples: list[tuple[float, float]], threads: list[int]
) -> None:
    while not stop.is_set():
        threads.append(threading.active_count())
        started = time.monotonic()
        await asyncio.to_thread(int)
        samples.append((started, time.monotonic() - started))
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except TimeoutError:
            pass


async def measure(url: str, streams: int, tokens: int, timeout: float) -> dict[str, Any]:
    probe_samples: list[tuple[float, float]] = []
    opened: list[float] = []
    stop = asyncio.Event()
    thread_counts: list[int] = []
    probe = asyncio.create_task(executor_probe(stop, probe_samples, thread_counts))
    cpu0, wall0 = time.process_time(), time.monotonic()
    tasks = [asyncio.create_task(one_stream(url, tokens, opened)) for _ in range(streams)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    for task in pending:
        task.cancel()
    stop.set()
    await probe
    results = [t.result() for t in done if not t.cancelled() and t.exception() is None]
    complete = [r for r in results if r["tokens"] == tokens and not r["error"]]
    firsts = [r["first"] for r in results if r["first"] is not None]
    all_open = max(opened, default=wall0)
    # Opening 1,000 streams is one burst of synchronous work on the loop; the probe is reported
    # separately for that burst and for the streaming that follows.
    burst = [lat for at, lat in probe_samples if at < all_open] or [0.0]
    streaming = [lat for at, lat in probe_samples if at >= all_open] or [0.0]
    return {
        "streams": streams,
        "tokens_per_stream": tokens,
        "completed": len(complete),
        "unfinished_at_timeout": len(pending),
        "failed": [r["error"] for r in results if r["error"]][:3]
        + [repr(t.exception())[:200] for t in done if t.exception() is not None][:3],
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_us_per_delta": round(cpu / max(1, sum(r["tokens"] for r in results)) * 1e6, 1),
        "first_delta_s_median": round(statistics.median(firsts), 3) if firsts else None,
        "worst_gap_s": round(max((r["worst_gap"] for r in results), default=0.0), 3),
        "open_all_s": round(all_open - wall0, 3),
        "executor_probe_ms_during_open_max": round(max(burst) * 1e3, 2),
        "executor_probe_ms_streaming_median": round(statistics.median(streaming) * 1e3, 2),
        "executor_probe_ms_streaming_max": round(max(streaming) * 1e3, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_threads": max(thread_counts, default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="tokens per second per stream")
    parser.add_argument("--url", help="an already running server (default: spawn one)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.url:
        report = asyncio.run(measure(args.url, args.streams, args.tokens, args.timeout))
    else:
        from tinyagent.testing import Reply, spawn_server

        reply = Reply(text="abcd" * args.tokens, chunk_chars=4, delay=1.0 / args.rate)
        with spawn_server(reply) as server:
            report = asyncio.run(measure(server.url, args.streams, args.tokens, args.timeout))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
