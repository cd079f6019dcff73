"""The partial is built by one builder on every path (docs/architecture.md#partial).

The test double (``ScriptedStreamFn``), the proxy client and the built-in provider (loopback server
+ Rust core, drained batches) must show the same live partial for the same tool-call deltas: the
same best-effort ``arguments`` mid-stream, the same finished call. The best-effort rule is the
core's, so the public ``next_event()`` partial fills an unfinished text exactly as they do. And the
core's handles are read through ``drain()`` batches even on a loop without ``add_reader``
(docs/design.md#python-side).
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from typing import Any

import pytest
from support.core_inputs import context, model_for, options

from tinyagent import _alchemy, testing
from tinyagent._partial import best_effort_arguments
from tinyagent.agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    Context,
    Model,
    SimpleStreamOptions,
    TextContent,
    UserMessage,
)
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.proxy_event_handlers import process_proxy_event
from tinyagent.testing.scripted import ScriptedReply, ScriptedStreamFn, ScriptedToolCall

LIVENESS = 5.0
#: Cut in threes, every other prefix stands for an object so far; a nested object, an array and a
#: string holding a brace give the best-effort rule work to do.
RAW = '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":{"g":[6,7]},"s":"}"}'
CHUNK = 3
#: Argument texts whose every prefix goes through the ``next_event()`` partial: open strings with
#: escapes, arrays, nesting, numbers cut mid-way, literals, non-ASCII text.
UNFINISHED = [
    RAW,
    '{"path": "a/b.txt", "lines": ["x", "y\\"z"], "n": -1.5e3, "ok": true, "none": null}',
    '{"q": "é ✓ \\u00e9", "deep": {"k": [[1], {"m": "}"}]}, "e": []}',
]


def ask() -> Context:
    return Context(messages=[UserMessage(content=[TextContent(text="write it")])])


Seen = dict[str, dict[str, Any]]


class Run:
    """One stream's events and, taken while iterating, ``partial_json`` → best-effort
    ``arguments`` of its tool block at each ``tool_call_delta``."""

    def __init__(self) -> None:
        self.events: list[AssistantMessageEvent] = []
        self.seen: Seen = {}

    async def read(self, response: Any) -> Run:
        async for event in response:
            self.events.append(event)
            if event.type == "tool_call_delta":
                block = event.partial.content[event.content_index]
                self.seen[block.partial_json] = copy.deepcopy(block.arguments)
        return self

    @property
    def final_call(self) -> Any:
        return next(e.tool_call for e in self.events if e.type == "tool_call_end")


def real_path() -> Run:
    # Paced, so most fragments arrive in a batch of their own and the partial is seen at most
    # prefixes (a batch of several fragments shows only its last one, which is compared as well).
    spec = testing.ToolCallSpec("write", RAW, id="call_1", fragment_chars=CHUNK)
    reply = testing.Reply(tool_calls=[spec], chunk_chars=CHUNK, delay=0.005)

    async def main(url: str) -> Run:
        model = OpenAICompatModel(provider="local", id="demo", base_url=url)
        response = await stream_alchemy_openai_completions(model, ask(), SimpleStreamOptions())
        return await Run().read(response)

    with testing.ModelServer(testing.ScriptedBrain([reply])) as server:
        return asyncio.run(asyncio.wait_for(main(server.url), LIVENESS))


def scripted(raw: str = RAW, chunk: int = CHUNK) -> Run:
    reply = ScriptedReply(
        tool_calls=[ScriptedToolCall("write", raw, id="call_1")], chunk_size=chunk
    )
    stream_fn = ScriptedStreamFn([reply])

    async def main() -> Run:
        model = Model(provider="test", id="scripted", api="scripted")
        return await Run().read(await stream_fn(model, ask(), SimpleStreamOptions()))

    return asyncio.run(main())


def proxied(raw: str = RAW) -> Run:
    """The proxy's event table fed the same fragments (no server: the table is what builds)."""
    run, partial = Run(), AssistantMessage(content=[])
    frames = [{"type": "toolcall_start", "contentIndex": 0, "id": "call_1", "toolName": "write"}]
    frames += [
        {"type": "toolcall_delta", "contentIndex": 0, "delta": raw[n : n + CHUNK]}
        for n in range(0, len(raw), CHUNK)
    ]
    frames.append({"type": "toolcall_end", "contentIndex": 0})
    for frame in frames:
        event = process_proxy_event(frame, partial)
        assert event is not None
        run.events.append(event)
        if event.type == "tool_call_delta":
            run.seen[partial.content[0].partial_json] = copy.deepcopy(partial.content[0].arguments)
    return run


def test_scripted_partial_has_the_real_paths_best_effort_arguments() -> None:
    real, double = real_path().seen, scripted().seen
    # The double shows every prefix, with arguments filled in before the call ends.
    prefixes = [RAW[:n] for n in range(CHUNK, len(RAW), CHUNK)] + [RAW]
    assert list(double) == prefixes
    assert double['{"a":1,"b":2'] == {"a": 1, "b": 2}
    assert double[RAW[:45]] == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": {"g": [6, 7]}}
    # The core's rule: an open array or string is closed, a value still to come is null.
    head = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    assert double[RAW[:42]] == {**head, "f": {"g": [6]}}
    assert double[RAW[:51]] == {**head, "f": {"g": [6, 7]}, "s": None}
    assert double[RAW[:54]] == {**head, "f": {"g": [6, 7]}, "s": "}"}
    assert double[RAW] == json.loads(RAW)
    # Whatever the core's batches let the real path show, the double shows the same there.
    assert real and set(real) <= set(double)
    assert {text: double[text] for text in real} == real
    assert any(arguments for text, arguments in real.items() if text != RAW)


def test_proxy_partial_has_the_same_best_effort_arguments() -> None:
    assert proxied().seen == scripted().seen


def test_finished_calls_agree_on_every_path() -> None:
    real = real_path().final_call.model_dump()
    assert scripted().final_call.model_dump() == real == proxied().final_call.model_dump()
    assert real["arguments"] == json.loads(RAW) and real.get("partial_json") is None
    # An unparseable text: arguments {} and the raw text kept, on the double and the proxy alike.
    broken = '{"a": '
    assert scripted(broken).final_call.model_dump() == proxied(broken).final_call.model_dump()
    assert proxied(broken).final_call.partial_json == broken


def next_event_partials(raw: str) -> Seen:
    """``partial_json`` → ``arguments`` of the public ``next_event()`` partial (built in Rust) at
    each ``tool_call_delta``, the text streamed one character per chunk."""
    spec = testing.ToolCallSpec("write", raw, id="call_1", fragment_chars=1)
    reply = testing.Reply(tool_calls=[spec], chunk_chars=1, delay=0.001)
    seen: Seen = {}
    with testing.ModelServer(testing.ScriptedBrain([reply])) as server:
        handle = _alchemy.openai_completions_stream(
            model_for(server.url), context("write it"), options()
        )
        while (event := handle.next_event()) is not None:
            if event["type"] == "tool_call_delta":
                block = event["partial"]["content"][event["content_index"]]
                seen[block["partial_json"]] = copy.deepcopy(block["arguments"])
    return seen


@pytest.mark.parametrize("raw", UNFINISHED)
def test_python_partial_fills_unfinished_arguments_as_next_event_does(raw: str) -> None:
    core = next_event_partials(raw)
    # Paced one character per chunk: most prefixes reach the partial on their own.
    assert len(core) > len(raw) // 2
    for text, arguments in core.items():
        assert best_effort_arguments(text) == arguments, text
    # The builder of every Python stream (here the double's, one character per delta) agrees.
    double = scripted(raw, chunk=1).seen
    assert {text: double[text] for text in core} == core
    assert any(arguments for text, arguments in core.items() if text != raw)


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A running loop whose public ``add_reader`` is the abstract one, as on Windows' Proactor."""

    add_reader = asyncio.AbstractEventLoop.add_reader  # type: ignore[assignment]


def test_loop_without_readers_reads_the_core_through_drain() -> None:
    reply = testing.Reply(text="abcd" * 30, chunk_chars=4, delay=0.002)

    async def main(url: str) -> tuple[list[AssistantMessageEvent], set[str]]:
        model = OpenAICompatModel(provider="local", id="demo", base_url=url)
        response = await stream_alchemy_openai_completions(model, ask(), SimpleStreamOptions())
        events = []
        names: set[str] = set()
        async for event in response:
            events.append(event)
            # threads started for this stream (an earlier test's idle worker may still exit)
            names.update(t.name for t in threading.enumerate() if t not in before)
        return events, names

    before = set(threading.enumerate())
    loop = NoReaderLoop()
    try:
        with testing.ModelServer(testing.ScriptedBrain([reply])) as server:
            events, names = loop.run_until_complete(asyncio.wait_for(main(server.url), LIVENESS))
    finally:
        loop.close()
    assert "".join(e.delta for e in events if e.type == "text_delta") == "abcd" * 30
    assert events[-1].type == "done"
    # Woken by the loop's watcher thread (Notifier.wait), not read by a next_event() thread.
    assert "tinyagent-notifier" in names and "tinyagent-stream" not in names
    # The watcher ends with the loop's last stream (within one wait slice), leaving no thread.
    deadline = time.monotonic() + LIVENESS
    while any(t.name == "tinyagent-notifier" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the notifier watcher thread did not exit"
        time.sleep(0.02)
