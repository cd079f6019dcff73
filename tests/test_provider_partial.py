"""The live partial and its events (docs/architecture.md#partial), driven by drained 4-tuples
directly.

One partial per stream updated in place, O(n) text growth even with one delta per batch,
best-effort tool arguments up to 64 KiB, and events equal to what ``model_construct`` builds.
"""

from __future__ import annotations

import time

import pytest

from tinyagent import _partial
from tinyagent.agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    TextContent,
)

LIVENESS = 3.0


def test_events_are_built_like_model_construct() -> None:
    partial = AssistantMessage()
    fields = {"type": "text_delta", "partial": partial, "content_index": 0, "delta": "x"}
    slow = AssistantMessageEvent.model_construct(**fields)
    for fast in (
        _partial.construct_event(**fields),
        _partial._delta_event("text_delta", partial, 0, "x"),
    ):
        assert fast == slow
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.model_dump(exclude_none=True) == slow.model_dump(exclude_none=True)
        assert fast.partial is partial
        fast.delta = "changed"  # assignment works as on any model
        assert fast.delta == "changed" and slow.delta == "x"


def test_long_reply_is_linear_even_with_one_delta_per_batch() -> None:
    partial = AssistantMessage(content=[])
    builder = _partial.PartialBuilder(partial, lambda t: t)
    builder.apply([("text_start", 0, None, None)])
    delta = "x" * 40
    started = time.perf_counter()
    for _ in range(50_000):
        builder.apply([("text_delta", 0, delta, None)])
    elapsed = time.perf_counter() - started
    assert partial.content[0].text == delta * 50_000
    # Copying the text per delta would move ~50 GB here; amortised appends take well under 1 s.
    assert elapsed < LIVENESS


def test_tool_arguments_best_effort_until_64_kib() -> None:
    partial = AssistantMessage(content=[])
    builder = _partial.PartialBuilder(partial, lambda t: t)
    builder.apply([("tool_call_start", 0, "c1", "write")])
    builder.apply([("tool_call_delta", 0, '{"path": "a.txt", ', None)])
    block = partial.content[0]
    assert block.arguments == {} and block.partial_json == '{"path": "a.txt", '
    builder.apply([("tool_call_delta", 0, '"body": {"n": 1', None)])
    assert block.arguments == {"path": "a.txt", "body": {"n": 1}}
    big = "y" * (_partial.BEST_EFFORT_ARGUMENTS_LIMIT + 10)
    builder.apply([("tool_call_delta", 0, '}, "blob": "', None), ("tool_call_delta", 0, big, None)])
    assert block.arguments == {}  # above the cap the arguments stay {} until the call ends
    raw = block.partial_json + '"}'
    final = {"type": "tool_call", "id": "c1", "name": "write", "arguments": {"blob": big}}
    builder.apply([("tool_call_delta", 0, '"}', None), ("tool_call_end", 0, final, None)])
    assert block.partial_json is None and block.arguments == {"blob": big}
    assert len(raw) > _partial.BEST_EFFORT_ARGUMENTS_LIMIT


def test_unparsable_tool_arguments_keep_the_raw_text() -> None:
    partial = AssistantMessage(content=[])
    builder = _partial.PartialBuilder(partial, lambda t: t)
    end = {"type": "tool_call", "id": "c", "name": "f", "arguments": {}, "partial_json": '{"a": '}
    builder.apply([("tool_call_start", 0, "c", "f"), ("tool_call_delta", 0, '{"a": ', None)])
    events = builder.apply([("tool_call_end", 0, end, None)])
    assert events[0].tool_call.partial_json == '{"a": '
    assert partial.content[0].partial_json == '{"a": ' and partial.content[0].arguments == {}


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ('{"a": 1}', {"a": 1}),
        ('{"a": 1', {"a": 1}),
        ('{"a": {"b": 2', {"a": {"b": 2}}),
        # the core's rule also closes a string or an array, and fills a value still to come
        ('{"a": "x', {"a": "x"}),
        ('{"a":1,"c":[1,2', {"a": 1, "c": [1, 2]}),
        ('{"a": 1, "b":', {"a": 1, "b": None}),
        ('{"a": 1, "b"', {}),
        ('{"a": {"b": [{"c": 1', {}),  # more to close than the rule tries
        ("", {}),
        ("[1, 2]", {}),
        # the limit counts UTF-8 bytes, as the core does: 40,007 characters, 80,007 bytes
        ('{"a": "' + "é" * 40_000, {}),
    ],
)
def test_best_effort_arguments(raw: str, parsed: dict) -> None:
    assert _partial.best_effort_arguments(raw) == parsed


def test_block_after_a_gap_pads_with_none() -> None:
    partial = AssistantMessage(content=[])
    _partial.PartialBuilder(partial, lambda t: t).apply([("text_start", 2, None, None)])
    assert partial.content == [None, None, TextContent(text="")]
