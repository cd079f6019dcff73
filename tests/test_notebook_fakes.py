"""The notebook fakes (``tests/support/notebook_fakes.py``) have the shapes the other notebook
tests rely on: one shared partial per stream, the loop's event order."""

from __future__ import annotations

from support.notebook_fakes import Step, provider_events, recorded_run


def test_provider_events_share_one_partial_and_end_with_done() -> None:
    events = provider_events(Step(text="hello world", tool_calls=[("c1", "add", {"a": 1})]))
    partials = {id(e.partial) for e in events if e.partial is not None}
    assert len(partials) == 1
    assert events[0].type == "start" and events[-1].type == "done"
    assert "".join(e.delta for e in events if e.type == "text_delta") == "hello world"
    assert events[-1].message.stop_reason == "tool_calls"


def test_recorded_run_follows_the_contract_order() -> None:
    events = recorded_run(Step(text="x", tool_calls=[("c1", "add", {})]))
    kinds = [e.type for e in events]
    assert kinds[0] == "agent_start" and kinds[-1] == "agent_end"
    assert kinds.index("tool_execution_start") > kinds.index("message_end", 4)
    assert kinds.count("message_start") == kinds.count("message_end")
