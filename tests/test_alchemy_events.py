"""`tinyagent._alchemy` through the real extension: event dicts, order, partial, result, collect
and the input/start errors of docs/architecture.md#core-surface (loopback server, no
network)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.core_inputs import context, model_for, options

from tinyagent import _alchemy
from tinyagent.testing import ModelServer, Reply, ScriptedBrain, ToolCallSpec

CONTEXT = context()
USAGE_KEYS = {"input", "output", "cache_read", "cache_write", "total_tokens", "cost"}
COST_KEYS = {"input", "output", "cache_read", "cache_write", "total"}


def read_all(handle: Any) -> list[dict[str, Any]]:
    events = []
    while (event := handle.next_event()) is not None:
        events.append(event)
    return events


def squeeze(types: list[str]) -> list[str]:
    """Consecutive repeats collapsed: the shape of an event sequence."""
    out: list[str] = []
    for t in types:
        if not out or out[-1] != t:
            out.append(t)
    return out


FULL_REPLY = Reply(
    reasoning="Two cities, two lookups.",
    text="Checking both — one moment.",
    tool_calls=[ToolCallSpec("get_time", {"city": "Oslo"}, id="call_a"),
                ToolCallSpec("get_time", {"city": "Lima"}, id="call_b")],
    chunk_chars=5,
)


def test_every_event_type_in_contract_order() -> None:
    with ModelServer(ScriptedBrain([FULL_REPLY])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        started = int(time.time() * 1000)
        events = read_all(handle)
    types = [e["type"] for e in events]
    assert squeeze(types) == [
        "start",
        "thinking_start", "thinking_delta", "thinking_end",
        "text_start", "text_delta", "text_end",
        "tool_call_start", "tool_call_delta", "tool_call_start", "tool_call_delta",
        "tool_call_end", "done",
    ]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_type.setdefault(e["type"], []).append(e)
    thinking = "".join(e["delta"] for e in by_type["thinking_delta"])
    text = "".join(e["delta"] for e in by_type["text_delta"])
    assert thinking == "Two cities, two lookups."
    assert text == "Checking both — one moment."
    assert by_type["thinking_end"][0] == {"type": "thinking_end", "content_index": 0,
                                          "content": thinking,
                                          "partial": events[0]["partial"]}
    assert by_type["text_end"][0]["content"] == text
    assert by_type["text_start"][0]["content_index"] == 1
    starts = by_type["tool_call_start"]
    assert [s["tool_call"] for s in starts] == [
        {"type": "tool_call", "id": "call_a", "name": "get_time", "arguments": {}},
        {"type": "tool_call", "id": "call_b", "name": "get_time", "arguments": {}},
    ]
    ends = by_type["tool_call_end"]
    assert [(e["content_index"], e["tool_call"]) for e in ends] == [
        (2, {"type": "tool_call", "id": "call_a", "name": "get_time", "arguments": {"city": "Oslo"}}),
        (3, {"type": "tool_call", "id": "call_b", "name": "get_time", "arguments": {"city": "Lima"}}),
    ]
    done = events[-1]
    assert done["reason"] == "tool_calls"
    message = done["message"]
    assert message["stop_reason"] == "tool_calls"
    assert message["content"] == [
        {"type": "thinking", "thinking": thinking, "thinking_signature": "reasoning_content"},
        {"type": "text", "text": text, "text_signature": None},
        {"type": "tool_call", "id": "call_a", "name": "get_time", "arguments": {"city": "Oslo"}},
        {"type": "tool_call", "id": "call_b", "name": "get_time", "arguments": {"city": "Lima"}},
    ]
    assert (message["role"], message["api"], message["provider"], message["model"]) == (
        "assistant", "openai-completions", "local", "test-model")
    assert message["error_message"] is None
    assert isinstance(message["timestamp"], int) and abs(message["timestamp"] - started) < 5000
    assert set(message["usage"]) == USAGE_KEYS and set(message["usage"]["cost"]) == COST_KEYS
    assert message["usage"]["input"] > 0 and message["usage"]["output"] > 0


def test_next_event_returns_none_forever_after_the_end() -> None:
    with ModelServer(ScriptedBrain([Reply(text="ok")])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        events = read_all(handle)
        assert events[-1]["type"] == "done"
        assert [handle.next_event() for _ in range(3)] == [None, None, None]


def test_partial_is_one_dict_holding_every_delta_so_far() -> None:
    reply = Reply(text="abcdefghij" * 20, chunk_chars=3, delay=0.003,
                  tool_calls=[ToolCallSpec("lookup", {"query": "x" * 40}, id="call_1",
                                           fragment_chars=7)])
    with ModelServer(ScriptedBrain([reply])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        partial = None
        text_so_far = ""
        args_so_far = ""
        saw_partial_arguments = False
        while (event := handle.next_event()) is not None:
            if event["type"] in ("done", "error"):
                break
            if partial is None:
                partial = event["partial"]
            assert event["partial"] is partial
            if event["type"] == "text_delta":
                text_so_far += event["delta"]
                assert partial["content"][0]["text"].startswith(text_so_far)
            if event["type"] == "tool_call_delta":
                args_so_far += event["delta"]
                block = partial["content"][event["content_index"]]
                # the partial may run ahead: within this batch the call may already be final
                if "partial_json" in block:
                    assert block["partial_json"].startswith(args_so_far)
                assert isinstance(block["arguments"], dict)
                saw_partial_arguments |= block["arguments"] == {"query": "x" * 40}
        assert event["type"] == "done"
        assert saw_partial_arguments
        assert "partial_json" not in partial["content"][1]
        assert partial["content"][1]["arguments"] == {"query": "x" * 40}


@pytest.mark.parametrize("when", ["before", "during", "after"])
def test_result_before_during_and_after_draining(when: str) -> None:
    with ModelServer(ScriptedBrain([Reply(text="result text", chunk_chars=2)])) as server:
        handle = _alchemy.openai_completions_stream(model_for(server.url), CONTEXT, options())
        if when == "before":
            final = handle.result()
            events = read_all(handle)
        elif when == "during":
            first = [handle.next_event(), handle.next_event()]
            final = handle.result()
            events = first + read_all(handle)
        else:
            events = read_all(handle)
            final = handle.result()
    assert final["content"] == [{"type": "text", "text": "result text", "text_signature": None}]
    assert events[0]["type"] == "start" and events[-1]["type"] == "done"
    assert events[-1]["message"] == final
    assert handle.result() == final  # cached


def test_collect_returns_events_without_partial_and_the_final_message() -> None:
    with ModelServer(ScriptedBrain([Reply(text="hello there", reasoning="hm")])) as server:
        out = _alchemy.collect_openai_completions(model_for(server.url), CONTEXT)
    events = out["events"]
    assert all("partial" not in e for e in events)
    assert squeeze([e["type"] for e in events]) == [
        "start", "thinking_start", "thinking_delta", "thinking_end",
        "text_start", "text_delta", "text_end", "done"]
    assert events[-1]["message"] == out["final_message"]
    assert out["final_message"]["content"][1]["text"] == "hello there"


def test_malformed_inputs_raise_value_error_synchronously() -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    with pytest.raises(ValueError, match=r"^invalid model: model must be a dict"):
        _alchemy.openai_completions_stream([], CONTEXT, options())
    with pytest.raises(ValueError, match=r"^invalid options: options must be a dict"):
        _alchemy.openai_completions_stream(model_for(url), CONTEXT, None)
    with pytest.raises(ValueError, match=r"^invalid context: "):
        _alchemy.openai_completions_stream(model_for(url), {**CONTEXT, "messages": [object()]},
                                           options())
    with pytest.raises(ValueError, match=r"^invalid model: "):
        _alchemy.openai_completions_stream({"provider": "local"}, CONTEXT, options())


def test_start_errors_raise_runtime_error_from_every_consuming_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = model_for("https://api.openai.com/v1/chat/completions", provider="openai")
    handle = _alchemy.openai_completions_stream(model, CONTEXT, options())
    expected = "failed to start openai-completions stream: No API key provided for provider: openai"
    for call in (handle.next_event, handle.result, handle.drain, handle.result):
        with pytest.raises(RuntimeError) as info:
            call()
        assert str(info.value) == expected
    handle.cancel()  # harmless on a stream that never started
    with pytest.raises(RuntimeError, match="unsupported api 'google-generative-ai'"):
        _alchemy.collect_openai_completions(
            model_for("http://127.0.0.1:9/x", api="google-generative-ai"), CONTEXT, options())


def test_error_message_keeps_text_and_api_is_reported() -> None:
    from tinyagent.testing import Fault

    reply = Reply(text="The answer is forty-two", chunk_chars=4,
                  fault=Fault.inband_error(after=4, message="Upstream overloaded", code=502))
    with ModelServer(ScriptedBrain([reply])) as server:
        out = _alchemy.collect_openai_completions(model_for(server.url), CONTEXT, options())
    final = out["final_message"]
    assert out["events"][-1]["type"] == "error" and out["events"][-1]["reason"] == "error"
    assert out["events"][-1]["error"] == final
    assert final["stop_reason"] == "error"
    assert final["error_message"] == "provider error 502: Upstream overloaded"
    assert final["content"] and final["content"][0]["type"] == "text"


def test_json_completion_becomes_the_normal_event_sequence() -> None:
    from tinyagent.testing import Fault

    reply = Reply(text="json answer", reasoning="why", fault=Fault.json_reply())
    with ModelServer(ScriptedBrain([reply])) as server:
        out = _alchemy.collect_openai_completions(model_for(server.url), CONTEXT, options())
    assert [e["type"] for e in out["events"]] == [
        "start", "thinking_start", "thinking_delta", "thinking_end",
        "text_start", "text_delta", "text_end", "done"]
    assert out["final_message"]["content"][1]["text"] == "json answer"


def test_utf8_split_across_reads_stays_intact() -> None:
    from tinyagent.testing import Fault

    text = "héllo 世界 — 🎉🧪 ok"
    with ModelServer(ScriptedBrain([Reply(text=text, fault=Fault.multibyte_split())])) as server:
        out = _alchemy.collect_openai_completions(model_for(server.url), CONTEXT, options())
    assert "".join(e["delta"] for e in out["events"] if e["type"] == "text_delta") == text
    assert out["final_message"]["content"][0]["text"] == text


def test_tolerated_oddities_are_logged_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with ModelServer(ScriptedBrain([Reply(text="fine", finish_reason="mystery")])) as server:
        with caplog.at_level("WARNING", logger="tinyagent._alchemy"):
            out = _alchemy.collect_openai_completions(model_for(server.url), CONTEXT, options())
    assert out["final_message"]["stop_reason"] == "stop"
    warnings = [r for r in caplog.records if r.name == "tinyagent._alchemy"]
    assert any("mystery" in r.getMessage() for r in warnings), caplog.text


TRANSCRIPT = "".join(line + "\r\n\r\n" for line in [
    ": OPENROUTER PROCESSING",
    'data: {"id":"gen-7","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
    'data: {"id":"gen-7","choices":[{"index":0,"delta":{"reasoning":"Two cities, two lookups."}}]}',
    'data: {"id":"gen-7","choices":[{"index":0,"delta":{"content":"Checking both — one moment."}}]}',
    'data: {"id":"gen-7","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_time","arguments":""}}]}}]}',
    'data: {"id":"gen-7","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\\"city\\":"}}]}}]}',
    'data: {"id":"gen-7","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\":\\"Oslo\\"}"}}]}}]}',
    'data: {"id":"gen-7","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\\"Lima\\"}"}}]}}]}',
    'data: {"id":"gen-7","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
    'data: {"id":"gen-7","choices":[],"usage":{"prompt_tokens":812,"completion_tokens":64,"total_tokens":876,"prompt_tokens_details":{"cached_tokens":768},"cost":0.000412,"cost_details":{"upstream_inference_cost":null}}}',
    "data: [DONE]",
]).encode()


@pytest.mark.parametrize("one_byte_per_send", [False, True])
def test_wire_transcript_gives_the_documented_events(one_byte_per_send: bool) -> None:
    """The worked transcript of docs/wire.md#lifecycle end to end; one byte per TCP send gives the
    same events (R3, R16)."""
    from tinyagent.testing import Fault

    fault = Fault.multibyte_split(pause=0.0005) if one_byte_per_send else None
    reply = Reply(raw_sse=TRANSCRIPT, fault=fault)
    with ModelServer(ScriptedBrain([reply])) as server:
        out = _alchemy.collect_openai_completions(
            model_for(server.url, provider="openrouter"), CONTEXT, options(api_key="k"))
    call_a = {"type": "tool_call", "id": "call_a", "name": "get_time"}
    call_b = {"type": "tool_call", "id": "call_b", "name": "get_time"}
    assert [{k: v for k, v in e.items() if k not in ("message",)} for e in out["events"]] == [
        {"type": "start"},
        {"type": "thinking_start", "content_index": 0},
        {"type": "thinking_delta", "content_index": 0, "delta": "Two cities, two lookups."},
        {"type": "thinking_end", "content_index": 0, "content": "Two cities, two lookups."},
        {"type": "text_start", "content_index": 1},
        {"type": "text_delta", "content_index": 1, "delta": "Checking both — one moment."},
        {"type": "text_end", "content_index": 1, "content": "Checking both — one moment."},
        {"type": "tool_call_start", "content_index": 2, "tool_call": {**call_a, "arguments": {}}},
        {"type": "tool_call_start", "content_index": 3, "tool_call": {**call_b, "arguments": {}}},
        {"type": "tool_call_delta", "content_index": 3, "delta": '{"city":'},
        {"type": "tool_call_delta", "content_index": 2, "delta": '{"city":"Oslo"}'},
        {"type": "tool_call_delta", "content_index": 3, "delta": '"Lima"}'},
        {"type": "tool_call_end", "content_index": 2,
         "tool_call": {**call_a, "arguments": {"city": "Oslo"}}},
        {"type": "tool_call_end", "content_index": 3,
         "tool_call": {**call_b, "arguments": {"city": "Lima"}}},
        {"type": "done", "reason": "tool_calls"},
    ]
    final = out["final_message"]
    assert final["usage"] == {"input": 812, "output": 64, "cache_read": 768, "cache_write": 0,
                              "total_tokens": 876, "cost": {"input": 0.0, "output": 0.0,
                                                            "cache_read": 0.0,
                                                            "cache_write": 0.0,
                                                            "total": 0.000412}}
    assert final["content"][0]["thinking_signature"] == "reasoning"
