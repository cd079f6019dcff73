"""Live notebook rendering cost: comm messages, bytes and kernel CPU per token
(docs/notebook.md#live-rendering).

A 20,000-token reply (one ~4-character delta per token, Markdown with headings, paragraphs, code
blocks and a table) is fed as agent events through the real ``LiveRenderer`` and ``AgentView``
anywidget, whose comm is replaced by a recording one (no kernel, no browser). Time is simulated
at a given token rate so the throttle sees the same timestamps a real stream would produce; CPU
is the process CPU time spent inside the renderer (events are built beforehand).

For reference, a naive design that re-renders and resends the whole answer on every flush (what
an ``ipywidgets.HTML`` value update does) is measured with the same throttle.

    python bench/notebook_render_bench.py [--tokens 20000] [--rates 50,200,1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.recording_comm import install_recording_comms  # noqa: E402

from tinyagent.agent_types import (  # noqa: E402
    AgentEndEvent,
    AgentStartEvent,
    AssistantMessage,
    AssistantMessageEvent,
    MessageEndEvent,
    MessageStartEvent,
    MessageUpdateEvent,
    TextContent,
    TurnEndEvent,
    TurnStartEvent,
    new_zero_usage,
)
from tinyagent.notebook._document import RunDocument  # noqa: E402
from tinyagent.notebook._markdown import markdown_html  # noqa: E402
from tinyagent.notebook._render import LiveRenderer  # noqa: E402

COMMS = install_recording_comms()  # every widget comm records what it would send


def reply_text(tokens: int) -> str:
    out: list[str] = []
    chars = 0
    i = 0
    while chars < tokens * 4:
        if i % 30 == 0:
            out.append(f"\n## Part {i // 30}\n\n")
        if i % 30 == 10:
            out.append(
                "```python\n"
                + "".join(f"result_{i}_{j} = compute({j}, scale={i})\n" for j in range(6))
                + "```\n\n"
            )
        if i % 30 == 20:
            out.append(
                "| item | value | note |\n|---|---|---|\n"
                + "".join(f"| {j} | {j * i} | row {j} |\n" for j in range(5))
                + "\n"
            )
        out.append(
            f"Sentence {i} explains one more step of the answer in plain words, with *emphasis* and `code`.\n\n"
        )
        chars = sum(len(p) for p in out)
        i += 1
    return "".join(out)


def events_for(text: str) -> list[Any]:
    partial = AssistantMessage(content=[TextContent(text="")], usage=new_zero_usage())
    events: list[Any] = [AgentStartEvent(), TurnStartEvent(), MessageStartEvent(message=partial)]
    events.append(
        MessageUpdateEvent(
            message=partial,
            assistant_message_event=AssistantMessageEvent(type="text_start", content_index=0),
        )
    )
    for i in range(0, len(text), 4):
        inner = AssistantMessageEvent(type="text_delta", content_index=0, delta=text[i : i + 4])
        events.append(MessageUpdateEvent(message=partial, assistant_message_event=inner))
    events.append(
        MessageUpdateEvent(
            message=partial,
            assistant_message_event=AssistantMessageEvent(
                type="text_end", content_index=0, content=text
            ),
        )
    )
    final = AssistantMessage(
        content=[TextContent(text=text)], stop_reason="stop", usage=new_zero_usage()
    )
    events += [
        MessageEndEvent(message=final),
        TurnEndEvent(message=final),
        AgentEndEvent(messages=[final]),
    ]
    return events


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def max_per_second(stamps: list[float]) -> int:
    best, start = 0, 0
    for end in range(len(stamps)):
        while stamps[end] - stamps[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_live(events: list[Any], rate: float) -> dict[str, float]:
    clock = SimClock()
    renderer = LiveRenderer(RunDocument(clock=clock), clock=clock, display=lambda view: None)
    renderer.start()
    view_comm = COMMS[-1]
    stamps: list[float] = []
    sent_before = len(view_comm.messages)
    cpu = time.process_time()
    for event in events:
        renderer(event)
        if len(view_comm.messages) != sent_before:
            stamps.extend([clock.now] * (len(view_comm.messages) - sent_before))
            sent_before = len(view_comm.messages)
        if event.type == "message_update":
            clock.now += 1.0 / rate
    renderer.finish()
    cpu = time.process_time() - cpu
    updates = [
        (size, isinstance(data, dict) and data.get("method") == "custom")
        for kind, size, data in view_comm.messages
        if kind == "comm_msg"
    ]
    tokens = sum(1 for e in events if e.type == "message_update") - 2
    return {
        "messages": len(updates),
        "max_per_s": max_per_second(stamps),
        "bytes": sum(size for size, _ in updates),
        "bytes_per_token": sum(size for size, _ in updates) / tokens,
        "cpu_us_per_token": cpu / tokens * 1e6,
        "seconds": clock.now,
    }


def run_naive(text: str, rate: float) -> dict[str, float]:
    """Resend the whole rendered answer on every (throttled) flush."""
    interval, last, now, sent, count, cpu = 1 / 25, float("-inf"), 0.0, 0, 0, time.process_time()
    for end in range(4, len(text) + 4, 4):
        now += 1 / rate
        if now - last >= interval or end >= len(text):
            sent += len(
                json.dumps({"method": "update", "state": {"value": markdown_html(text[:end])}})
            )
            count += 1
            last = now
    tokens = len(range(0, len(text), 4))
    return {
        "messages": count,
        "bytes": sent,
        "bytes_per_token": sent / tokens,
        "cpu_us_per_token": (time.process_time() - cpu) / tokens * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20000)
    parser.add_argument("--rates", default="50,200,1000", help="simulated tokens per second")
    parser.add_argument(
        "--naive", action="store_true", help="also measure the resend-everything design"
    )
    args = parser.parse_args()
    text = reply_text(args.tokens)
    events = events_for(text)
    print(f"reply: {len(range(0, len(text), 4))} tokens, {len(text)} characters\n")
    print(
        f"{'tok/s':>6} {'messages':>9} {'max msg/s':>9} {'KiB sent':>9} {'B/token':>8} {'CPU µs/token':>13}"
    )
    for rate in (float(r) for r in args.rates.split(",")):
        r = run_live(events, rate)
        print(
            f"{rate:>6.0f} {r['messages']:>9.0f} {r['max_per_s']:>9.0f} {r['bytes'] / 1024:>9.0f} {r['bytes_per_token']:>8.1f} {r['cpu_us_per_token']:>13.1f}"
        )
    print("\nlinearity at 200 tok/s (bytes for n tokens / bytes for n/4 tokens; linear = 4):")
    quarter = run_live(events_for(reply_text(args.tokens // 4)), 200)
    full = run_live(events, 200)
    print(f"  {full['bytes'] / quarter['bytes']:.2f}")
    if args.naive:
        naive = run_naive(text, 200)
        print(
            f"\nnaive resend-everything at 200 tok/s: {naive['messages']:.0f} messages, {naive['bytes'] / 1024:.0f} KiB, {naive['bytes_per_token']:.0f} B/token, {naive['cpu_us_per_token']:.0f} CPU µs/token"
        )


if __name__ == "__main__":
    main()
    for recorded in COMMS:  # nothing to close at interpreter exit
        recorded._closed = True
