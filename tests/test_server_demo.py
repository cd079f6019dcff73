"""The demo model's default brain follows docs/notebook.md#demo-model to the letter, over real
HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from support.sse_reader import StreamResult, assemble, parse_sse

from tinyagent.testing import DemoBrain, ModelServer


def tool(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": f"the {name} tool",
        "parameters": {"type": "object", "properties": properties, "required": required}}}


SUM = tool("sum", {"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"])
GET_TIME = tool("get_time", {"city": {"type": "string"}, "tz": {"type": "string"}}, ["city"])
MULTIPLY = tool("multiply", {"x": {"type": "integer"}, "y": {"type": "integer"}}, ["x", "y"])


@pytest.fixture(scope="module")
def server() -> Any:
    with ModelServer(DemoBrain()) as running:
        yield running


def ask(server: ModelServer, messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None) -> StreamResult:
    body: dict[str, Any] = {"model": "demo", "stream": True, "messages": messages,
                            "stream_options": {"include_usage": True}}
    if tools:
        body["tools"] = tools
    response = httpx.post(server.url, json=body, timeout=3.0)
    assert response.status_code == 200
    return assemble(parse_sse(response.content))


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def calls(result: StreamResult) -> list[tuple[str, dict[str, Any]]]:
    return [(c["name"], json.loads(c["arguments"])) for c in result.tool_calls]


def test_named_tool_is_called_with_numbers_from_the_prompt(server: ModelServer) -> None:
    result = ask(server, [user("Use the sum tool to add 2 and 3.5")], [SUM])
    assert calls(result) == [("sum", {"a": 2, "b": 3.5})]
    assert result.finish_reason == "tool_calls"
    assert result.text == ""
    assert result.reasoning["reasoning_content"].startswith("The prompt names `sum`")


def test_tools_in_order_of_mention_with_equivalent_separators(server: ModelServer) -> None:
    prompt = 'First GET-TIME for "Oslo", then Sum 4 and 5, and finally multiply 6 by 7.'
    result = ask(server, [user(prompt)], [SUM, MULTIPLY, GET_TIME])
    # numbers are consumed in order across the calls; optional "tz" is left out
    assert calls(result) == [("get_time", {"city": "Oslo"}), ("sum", {"a": 4, "b": 5}),
                             ("multiply", {"x": 6, "y": 7})]
    assert [c["id"] for c in result.tool_calls] == ["call_1_1", "call_1_2", "call_1_3"]


def test_space_separated_mention_and_whole_words_only(server: ModelServer) -> None:
    result = ask(server, [user("what does get time say? also summarise")], [SUM, GET_TIME])
    # "summarise" does not name "sum"; no quoted text, so the string is the property name
    assert calls(result) == [("get_time", {"city": "city"})]


def test_numbers_wrap_and_default_to_zero(server: ModelServer) -> None:
    wrapped = ask(server, [user("call sum and multiply with 3 and 4")], [SUM, MULTIPLY])
    assert calls(wrapped) == [("sum", {"a": 3, "b": 4}), ("multiply", {"x": 3, "y": 4})]
    none = ask(server, [user("please run sum")], [SUM])
    assert calls(none) == [("sum", {"a": 0, "b": 0})]


def test_enum_boolean_and_required_only(server: ModelServer) -> None:
    convert = tool("convert", {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                               "round": {"type": "boolean"}, "note": {"type": "string"}},
                   ["unit", "round"])
    result = ask(server, [user("convert 20 to Fahrenheit")], [convert])
    assert calls(result) == [("convert", {"unit": "fahrenheit", "round": True})]


def test_each_named_tool_called_once(server: ModelServer) -> None:
    result = ask(server, [user("sum 1 2, then sum again 3 4")], [SUM])
    assert calls(result) == [("sum", {"a": 1, "b": 2})]


def test_answer_after_results_quotes_each_result(server: ModelServer) -> None:
    messages = [
        user("sum 2 and 3 and get_time for 'Lima'"),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1_1", "type": "function",
             "function": {"name": "sum", "arguments": '{"a":2,"b":3}'}},
            {"id": "call_1_2", "type": "function",
             "function": {"name": "get_time", "arguments": '{"city":"Lima"}'}}]},
        {"role": "tool", "tool_call_id": "call_1_1", "content": "5"},
        {"role": "tool", "tool_call_id": "call_1_2", "content": "09:30"},
    ]
    result = ask(server, messages, [SUM, GET_TIME])
    assert result.text == 'The sum tool returned "5".\nThe get_time tool returned "09:30".'
    assert result.tool_calls == [] and result.finish_reason == "stop"
    usage = result.usage
    assert usage is not None
    # the earlier turn counts as cached prompt on the second request
    assert 0 < usage["prompt_tokens_details"]["cached_tokens"] < usage["prompt_tokens"]


def test_free_form_reply_quotes_first_line_and_is_deterministic(server: ModelServer) -> None:
    prompt = "What is the capital of France?\nAnswer briefly."
    first = ask(server, [user(prompt)])
    second = ask(server, [user(prompt)])
    assert first == second
    assert first.text.startswith("You wrote:\n\n> What is the capital of France?\n\n")
    assert "Answer briefly" not in first.text
    assert "offline demo model" in first.text
    reasoning = first.reasoning["reasoning_content"]
    assert reasoning and "\n" not in reasoning
    assert first.finish_reason == "stop"
    assert first.usage is not None and first.usage["prompt_tokens_details"]["cached_tokens"] == 0
    # small chunks: one word per delta
    assert first.chunks > 20


def test_free_form_with_unnamed_tools_lists_them(server: ModelServer) -> None:
    result = ask(server, [user("hello there")], [SUM, GET_TIME])
    assert result.tool_calls == []
    assert "Tools on offer: `sum` and `get_time`." in result.text


def test_part_array_user_content_is_read(server: ModelServer) -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "run SUM on 8 and 9",
                                            "cache_control": {"type": "ephemeral"}}]}
    assert calls(ask(server, [message], [SUM])) == [("sum", {"a": 8, "b": 9})]


def test_json_mode_demo(server: ModelServer) -> None:
    body = {"model": "demo", "messages": [user("use sum with 1 and 1")], "tools": [SUM]}
    response = httpx.post(server.url, json=body, timeout=3.0).json()
    message = response["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {"name": "sum", "arguments": '{"a":1,"b":1}'}


def test_a_json_schema_request_is_answered_with_an_instance_of_the_schema(server: ModelServer) -> None:
    schema = {"type": "object", "required": ["label", "score", "kind"], "properties": {
        "label": {"type": "string", "enum": ["bug", "praise", "refund"]},
        "score": {"type": "integer"}, "kind": {"$ref": "#/$defs/Kind"}},
        "$defs": {"Kind": {"type": "string", "enum": ["web", "mobile"]}}}
    body: dict[str, Any] = {"model": "demo", "stream": True,
                            "messages": [user("Refund the mobile order 7, please")],
                            "response_format": {"type": "json_schema",
                                                "json_schema": {"name": "T", "schema": schema}}}
    response = httpx.post(server.url, json=body, timeout=3.0)
    result = assemble(parse_sse(response.content))
    assert json.loads(result.text) == {"label": "refund", "score": 7, "kind": "mobile"}
