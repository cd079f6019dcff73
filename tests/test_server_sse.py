"""The loopback server speaks the OpenAI-compatible wire format (docs/wire.md#chunks,
docs/wire.md#json-replies) exactly."""

from __future__ import annotations

import json

import httpx
import pytest
from support.sse_reader import assemble, parse_sse

from tinyagent.testing import ModelServer, Reply, ScriptedBrain, ToolCallSpec, Usage


def chat(server: ModelServer, *, stream: bool = True, usage: bool = False, **extra: object
         ) -> httpx.Response:
    body: dict[str, object] = {"model": "test-model", "stream": stream,
                               "messages": [{"role": "user", "content": "hi"}], **extra}
    if usage:
        body["stream_options"] = {"include_usage": True}
    return httpx.post(server.url, json=body, timeout=3.0)


def test_addresses_and_models_endpoint() -> None:
    with ModelServer() as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/v1/chat/completions"
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        models = httpx.get(server.base_url + "/models", timeout=3.0).json()
        assert models["object"] == "list" and models["data"][0]["object"] == "model"


def test_refuses_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ModelServer(host="0.0.0.0")


def test_text_stream_framing_and_chunk_size() -> None:
    reply = Reply(text="Hello, wörld — 你好 🙂!", chunk_chars=3)
    with ModelServer(reply) as server:
        response = chat(server)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    events = parse_sse(response.content)
    result = assemble(events)
    assert result.text == reply.text
    assert result.finish_reason == "stop" and result.done
    assert result.usage is None  # no include_usage, no usage chunk
    first = events[0].json
    assert first["object"] == "chat.completion.chunk" and first["model"] == "test-model"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [e.json["choices"][0]["delta"].get("content") for e in events[1:-2]]
    assert all(len(c) <= 3 for c in contents) and "".join(contents) == reply.text
    assert events[-1].data == "[DONE]"
    assert response.content.endswith(b"data: [DONE]\n\n")


def test_usage_chunk_only_with_include_usage() -> None:
    reply = Reply(text="ok", usage=Usage(prompt_tokens=812, completion_tokens=64,
                                         cached_tokens=768, cost=0.000412))
    with ModelServer(reply) as server:
        without = parse_sse(chat(server).content)
        with_usage = parse_sse(chat(server, usage=True).content)
    assert not any("usage" in e.json for e in without if e.data != "[DONE]")
    usage_chunk = with_usage[-2].json
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876,
        "prompt_tokens_details": {"cached_tokens": 768, "cache_write_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0}, "cost": 0.000412}
    # the finish chunk comes before the usage chunk
    assert with_usage[-3].json["choices"][0]["finish_reason"] == "stop"


def test_estimated_usage_and_raw_usage_dict() -> None:
    raw = {"prompt_tokens": 5, "completion_tokens": 1, "cache_read_input_tokens": 4}
    with ModelServer([Reply(text="abcdefgh"), Reply(text="x", usage=raw)]) as server:
        estimated = assemble(parse_sse(chat(server, usage=True).content)).usage
        given = assemble(parse_sse(chat(server, usage=True).content)).usage
    assert estimated is not None and estimated["completion_tokens"] == 2
    assert estimated["total_tokens"] == estimated["prompt_tokens"] + 2
    assert given == raw


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "reasoning_text",
                                   "reasoning_details"])
def test_reasoning_fields(field: str) -> None:
    reply = Reply(reasoning="Two cities, two lookups.", text="Done.", reasoning_field=field)
    with ModelServer(reply) as server:
        result = assemble(parse_sse(chat(server).content))
    assert result.reasoning == {field: "Two cities, two lookups."}
    assert result.text == "Done."


def test_think_tag_reasoning_is_inline_content() -> None:
    reply = Reply(reasoning="Add 2 and 3.", text="The sum is 5.", reasoning_field="think_tag",
                  chunk_chars=4)
    with ModelServer(reply) as server:
        result = assemble(parse_sse(chat(server).content))
    assert result.reasoning == {}
    assert result.text == "<think>Add 2 and 3.</think>\n\nThe sum is 5."


def test_parallel_tool_calls_with_fragments() -> None:
    reply = Reply(text="Checking both.", tool_calls=[
        ToolCallSpec("get_time", {"city": "Oslo"}, id="call_a", fragment_chars=3),
        ToolCallSpec("get_time", {"city": "Lima"}, id="call_b", fragments=['{"city":', '"Lima"}']),
    ])
    with ModelServer(reply) as server:
        events = parse_sse(chat(server).content)
    result = assemble(events)
    assert result.finish_reason == "tool_calls"
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in result.tool_calls] == [
        ("call_a", "get_time", {"city": "Oslo"}), ("call_b", "get_time", {"city": "Lima"})]
    fragments = [e.json["choices"][0]["delta"]["tool_calls"][0] for e in events
                 if e.data != "[DONE]" and "tool_calls" in e.json["choices"][0]["delta"]]
    # the head carries id/type/name and empty arguments; continuations carry only arguments
    assert fragments[0] == {"index": 0, "id": "call_a", "type": "function",
                            "function": {"name": "get_time", "arguments": ""}}
    assert fragments[1] == {"index": 0, "function": {"arguments": '{"c'}}
    assert [f["function"]["arguments"] for f in fragments if f["index"] == 1][1:] == [
        '{"city":', '"Lima"}']


def test_interleaved_tool_calls_alternate_indexes() -> None:
    reply = Reply(interleave_tool_calls=True, tool_calls=[
        ToolCallSpec("a", {"x": 1}, fragments=["{", '"x":1}']),
        ToolCallSpec("b", {"y": 2}, fragments=["{", '"y":2}'])])
    with ModelServer(reply) as server:
        events = parse_sse(chat(server).content)
    indexes = [e.json["choices"][0]["delta"]["tool_calls"][0]["index"] for e in events
               if e.data != "[DONE]" and "tool_calls" in e.json["choices"][0]["delta"]]
    assert indexes == [0, 1, 0, 1, 0, 1]
    calls = assemble(events).tool_calls
    assert [json.loads(c["arguments"]) for c in calls] == [{"x": 1}, {"y": 2}]


def test_index_less_calls_repeat_identity_and_invalid_json() -> None:
    reply = Reply(tool_calls=[
        ToolCallSpec("search", '{"q": "unterminated', id="c1", send_index=False,
                     repeat_identity=True, fragment_chars=5),
        ToolCallSpec("noop", id="c2", send_index=False, index=None)])
    with ModelServer(reply) as server:
        events = parse_sse(chat(server).content)
    fragments = [f for e in events if e.data != "[DONE]"
                 for f in e.json["choices"][0]["delta"].get("tool_calls") or []]
    assert all("index" not in f for f in fragments)
    assert all(f["id"] == "c1" and f["function"]["name"] == "search" for f in fragments[:4])
    calls = assemble(events).tool_calls
    assert calls[0]["arguments"] == '{"q": "unterminated'  # served verbatim, invalid JSON kept
    assert calls[1] == {"id": "c2", "name": "noop", "arguments": "{}"}


def test_custom_finish_reason_comment_and_crlf() -> None:
    reply = Reply(text="cut", finish_reason="length", comment="OPENROUTER PROCESSING", crlf=True)
    with ModelServer(reply) as server:
        body = chat(server).content
    assert body.startswith(b": OPENROUTER PROCESSING\r\n\r\n")
    assert b"\n\n" not in body.replace(b"\r\n", b"")
    assert assemble(parse_sse(body)).finish_reason == "length"


def test_json_mode_completion_object() -> None:
    reply = Reply(text="Hi.", reasoning="Greeting.", tool_calls=[ToolCallSpec("f", {"a": 1},
                                                                             id="call_9")])
    with ModelServer(reply) as server:
        response = chat(server, stream=False)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert message["content"] == "Hi." and message["reasoning_content"] == "Greeting."
    assert message["tool_calls"] == [{"id": "call_9", "type": "function",
                                      "function": {"name": "f", "arguments": '{"a":1}'}}]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["total_tokens"] > 0  # JSON answers always carry usage


def test_raw_sse_is_served_byte_exact_with_status_and_headers() -> None:
    raw = (b'data: {"choices":[{"index":0,"delta":{"content":"Hal"}}]}\r\n\r\n'
           b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')  # no blank line
    with ModelServer(Reply(raw_sse=raw, status=201, headers={"X-Upstream": "recorded",
                                                              "Content-Type": "text/plain"})) as s:
        response = chat(s)
    assert response.status_code == 201
    assert response.content == raw
    assert response.headers["x-upstream"] == "recorded"
    assert response.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("framing", ["length", "close"])
def test_other_framings_deliver_the_same_body(framing: str) -> None:
    reply = Reply(text="framed " * 10, framing=framing)
    with ModelServer(reply) as server:
        response = chat(server)
    assert "transfer-encoding" not in response.headers
    assert assemble(parse_sse(response.content)).text == reply.text


def test_keep_alive_reuses_one_connection() -> None:
    with ModelServer(Reply(text="again")) as server, httpx.Client(timeout=3.0) as client:
        for _ in range(3):
            body = {"model": "m", "stream": True, "messages": []}
            assert assemble(parse_sse(client.post(server.url, json=body).content)).text == "again"
        ids = {r.connection_id for r in server.requests}
    assert ids == {1} and server.connection_count == 1


def test_bad_requests_get_openai_style_errors() -> None:
    with ModelServer() as server:
        not_json = httpx.post(server.url, content=b"{nope", timeout=3.0)
        wrong_path = httpx.post(server.base_url + "/completions", json={}, timeout=3.0)
        wrong_method = httpx.get(server.url, timeout=3.0)
    assert not_json.status_code == 400 and "invalid JSON" in not_json.json()["error"]["message"]
    assert wrong_path.status_code == 404
    assert wrong_method.status_code == 405


def test_function_brain_and_dict_answers() -> None:
    def brain(request: dict) -> object:
        return {"text": f"model={request['model']}", "finish_reason": "stop"}

    with ModelServer(ScriptedBrain(brain)) as server:
        assert assemble(parse_sse(chat(server).content)).text == "model=test-model"


def test_reply_round_trips_through_dict() -> None:
    from tinyagent.testing import Fault

    reply = Reply(text="t", reasoning="r", tool_calls=[ToolCallSpec("f", '{"bad', id="x")],
                  usage=Usage(prompt_tokens=3), fault=Fault.drop(2, reset=True),
                  raw_sse=b"data: [DONE]\n\n", headers={"A": "b"})
    again = Reply.from_dict(json.loads(json.dumps(reply.to_dict())))
    assert again == reply


def test_raw_constructor_for_recorded_error_bodies() -> None:
    error = b'{"error":{"message":"Invalid model","code":400}}'
    with ModelServer([Reply.raw(error, status=400), Reply.raw("data: [DONE]\n\n")]) as server:
        failed = chat(server)
        done = chat(server)
    assert failed.status_code == 400 and failed.content == error
    assert failed.headers["content-type"] == "application/json"
    assert done.headers["content-type"].startswith("text/event-stream")
    assert done.content == b"data: [DONE]\n\n"


def test_expect_100_continue_is_answered() -> None:
    import socket

    payload = json.dumps({"model": "m", "stream": False, "messages": []}).encode()
    with ModelServer(Reply(text="ok")) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=3.0)
        with sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(payload))
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(payload)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b'"content":"ok"' in answer


@pytest.mark.parametrize("placement", ["finish", "every"])
def test_usage_on_the_finish_chunk_or_every_chunk(placement: str) -> None:
    reply = Reply(text="abcdefgh", chunk_chars=2, usage_placement=placement,
                  usage=Usage(prompt_tokens=10, completion_tokens=4))
    with ModelServer(reply) as server:
        events = [e.json for e in parse_sse(chat(server, usage=True).content)[:-1]]
        plain = [e.json for e in parse_sse(chat(server).content)[:-1]]
    assert all("usage" not in e for e in plain)
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["usage"]["total_tokens"] == 14  # no separate usage chunk after it
    if placement == "every":
        assert [e["usage"]["completion_tokens"] for e in events[:-1]] == [0, 1, 2, 3, 4]
    else:
        assert all("usage" not in e for e in events[:-1])
    assert assemble(parse_sse(b"".join(b"data: " + json.dumps(e).encode() + b"\n\n"
                                       for e in events))).text == "abcdefgh"
