"""The proxy client (docs/architecture.md#proxy) against a small local HTTP server, and its event
table."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from support.agent_support import run, scripted_model, sum_tool

from tinyagent import (
    Agent,
    AgentOptions,
    AssistantMessage,
    Context,
    SimpleStreamOptions,
    TextContent,
    ToolCallContent,
    UserMessage,
)
from tinyagent.agent_types import ThinkingContent
from tinyagent.proxy import (
    ProxyStreamOptions,
    create_proxy_stream,
    create_proxy_stream_fn,
    stream_proxy,
)
from tinyagent.proxy_event_handlers import parse_streaming_json, process_proxy_event


class ProxyServer:
    """Serves one scripted response per request on 127.0.0.1 and records what it received."""

    def __init__(self, responses):
        self.responses = list(responses)
        self.requests: list[dict] = []
        self.disconnected = asyncio.Event()
        self.server = None

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _handle(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {
            k.lower(): v.strip()
            for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
        }
        body = await reader.readexactly(int(headers.get("content-length", 0)))
        self.requests.append({"line": lines[0], "headers": headers, "body": json.loads(body)})
        status, chunks, hang = self.responses.pop(0)
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".encode()
        )
        try:
            for chunk in chunks:
                data = chunk.encode()
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.005)
            if hang:
                if await reader.read(1) == b"":
                    self.disconnected.set()
                return
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            self.disconnected.set()
        finally:
            writer.close()


def sse(*events):
    return ["data: " + json.dumps(e) + "\n\n" for e in events]


TEXT_EVENTS = sse(
    {"type": "start"},
    {"type": "text_start", "contentIndex": 0},
    {"type": "text_delta", "contentIndex": 0, "delta": "Hel"},
    {"type": "text_delta", "contentIndex": 0, "delta": "lo"},
    {"type": "text_end", "contentIndex": 0, "contentSignature": "sig"},
    {"type": "done", "reason": "end_turn", "usage": {"input": 3}},
)


def context():
    return Context(
        system_prompt="sys",
        messages=[UserMessage(content=[TextContent(text="hi")], timestamp=1)],
        tools=[sum_tool()],
    )


def test_request_shape_and_text_stream():
    async def main():
        async with ProxyServer([(200, TEXT_EVENTS, False)]) as server:
            response = await create_proxy_stream(
                scripted_model(), context(), "tok-123", server.url, temperature=0.5, max_tokens=9
            )
            types = [e.type async for e in response]
            return server.requests[0], types, await response.result()

    request, types, final = run(main())
    assert request["line"] == "POST /api/stream HTTP/1.1"
    assert request["headers"]["authorization"] == "Bearer tok-123"
    assert request["headers"]["accept"] == "text/event-stream"
    body = request["body"]
    assert body["model"] == {
        "provider": "test",
        "id": "scripted-model",
        "api": "scripted",
        "thinking_level": "off",
    }
    assert body["options"] == {"temperature": 0.5, "maxTokens": 9, "reasoning": None}
    assert body["context"]["system_prompt"] == "sys"
    assert body["context"]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}], "timestamp": 1}
    ]
    assert body["context"]["tools"][0]["name"] == "sum" and "label" in body["context"]["tools"][0]
    assert types == ["start", "text_start", "text_delta", "text_delta", "text_end", "done"]
    assert final.stop_reason == "stop" and final.content[0].text == "Hello"
    assert final.content[0].text_signature == "sig" and final.usage == {"input": 3}
    assert isinstance(final.timestamp, int) and final.timestamp > 1_600_000_000_000


def test_non_200_becomes_error_event_with_the_token_scrubbed():
    async def main():
        async with ProxyServer([(502, ["upstream down for tok-secret"], False)]) as server:
            response = await create_proxy_stream(
                scripted_model(), context(), "tok-secret", server.url
            )
            events = [e async for e in response]
            return events

    (event,) = run(main())
    assert (
        event.type == "error"
        and event.error.error_message == "Proxy error: 502: upstream down for ***"
    )


def test_stream_without_done_is_an_error_and_bad_payloads_are_logged(caplog):
    chunks = [
        *sse({"type": "start"}, {"type": "text_start", "contentIndex": 0}),
        "data: [1, 2]\n\n",
        ": comment\n\n",
        "data: [DONE]\n\n",
    ]

    async def main():
        async with ProxyServer([(200, chunks, False)]) as server:
            response = await create_proxy_stream(
                scripted_model(), context(), "tok-secret", server.url
            )
            events = [e async for e in response]
            return events, response

    with caplog.at_level(logging.WARNING, logger="tinyagent.proxy"):
        events, response = run(main())
    assert events[-1].type == "error"
    assert events[-1].error.error_message == "Proxy stream ended without a done or error event"
    assert response.invalid_payloads == 1
    assert "not a JSON object" in caplog.text


def test_abort_signal_closes_the_connection():
    async def main():
        async with ProxyServer(
            [(200, sse({"type": "start"}, {"type": "text_start", "contentIndex": 0}), True)]
        ) as server:
            signal = asyncio.Event()
            response = await create_proxy_stream(
                scripted_model(), context(), "tok-secret", server.url, signal=signal
            )
            types = []
            async for event in response:
                types.append(event.type)
                if event.type == "text_start":
                    signal.set()
            await asyncio.wait_for(server.disconnected.wait(), 2)
            return types, await response.result()

    types, final = run(main())
    assert types[-1] == "error" and final.stop_reason == "aborted"
    assert final.error_message == "Request was aborted"


def test_callable_signal_is_polled():
    async def main():
        async with ProxyServer([(200, sse({"type": "start"}), True)]) as server:
            flag = {"stop": False}
            response = await create_proxy_stream(
                scripted_model(), context(), "tok-secret", server.url, signal=lambda: flag["stop"]
            )
            first = await response.__anext__()
            flag["stop"] = True
            rest = [e async for e in response]
            return first, rest

    first, rest = run(main())
    assert first.type == "start" and rest[-1].error.stop_reason == "aborted"


def test_aclose_stops_reading():
    async def main():
        async with ProxyServer([(200, sse({"type": "start"}), True)]) as server:
            response = await create_proxy_stream(
                scripted_model(), context(), "tok-secret", server.url
            )
            await response.__anext__()
            await response.aclose()
            await asyncio.wait_for(server.disconnected.wait(), 2)
            return [e async for e in response]

    assert run(main()) == []


def test_stream_proxy_rejects_simple_stream_options():
    with pytest.raises(
        TypeError, match="^stream_proxy needs ProxyStreamOptions; use create_proxy_stream_fn"
    ):
        run(stream_proxy(scripted_model(), context(), SimpleStreamOptions()))


def test_abort_is_checked_before_the_request():
    async def main():
        response = await stream_proxy(
            scripted_model(),
            context(),
            ProxyStreamOptions(
                auth_token="tok-secret", proxy_url="http://127.0.0.1:9", signal=lambda: True
            ),
        )
        events = [e async for e in response]
        return events, response

    events, response = run(main())
    assert events[0].error.stop_reason == "aborted"  # abort checked before the request


def test_proxy_drives_an_agent_with_session_id_and_options():
    async def main():
        async with ProxyServer([(200, TEXT_EVENTS, False)]) as server:
            agent = Agent(
                AgentOptions(
                    stream_fn=create_proxy_stream_fn(server.url, "tok"),
                    session_id="s-1",
                    temperature=0.2,
                )
            )
            agent.set_model(scripted_model())
            text = await agent.prompt_text("hi")
            return text, server.requests[0]["body"]["options"]

    text, options = run(main())
    assert text == "Hello"
    assert options == {"temperature": 0.2, "maxTokens": None, "reasoning": None, "sessionId": "s-1"}


# -- the event table ----------------------------------------------------------------------------


def fresh():
    return AssistantMessage(content=[], stop_reason="stop")


def test_text_and_thinking_blocks_with_padding():
    partial = fresh()
    assert (
        process_proxy_event({"type": "thinking_start", "contentIndex": 2}, partial).type
        == "thinking_start"
    )
    assert partial.content[:2] == [None, None] and isinstance(partial.content[2], ThinkingContent)
    process_proxy_event({"type": "thinking_delta", "contentIndex": 2, "delta": "hm"}, partial)
    end = process_proxy_event(
        {"type": "thinking_end", "contentIndex": 2, "contentSignature": "reasoning"}, partial
    )
    assert end.content == "hm" and partial.content[2].thinking_signature == "reasoning"
    wrong = process_proxy_event({"type": "text_delta", "contentIndex": 2, "delta": "x"}, partial)
    assert wrong.type == "error" and partial.stop_reason == "error"


def test_content_index_normalization():
    partial = fresh()
    for bad in (True, -3, "1", None):
        event = process_proxy_event({"type": "text_start", "contentIndex": bad}, partial)
        assert event.content_index == 0


def test_tool_call_events():
    partial = fresh()
    start = process_proxy_event(
        {"type": "toolcall_start", "contentIndex": 0, "id": "c1", "toolName": "sum"}, partial
    )
    assert start.tool_call.name == "sum" and partial.content[0].partial_json == ""
    process_proxy_event({"type": "toolcall_delta", "contentIndex": 0, "delta": '{"a": 1'}, partial)
    assert partial.content[0].arguments == {"a": 1}
    end = process_proxy_event({"type": "toolcall_end", "contentIndex": 0}, partial)
    assert end.tool_call.arguments == {} and end.tool_call.partial_json == '{"a": 1'
    # A complete text parses and clears partial_json.
    process_proxy_event(
        {"type": "toolcall_start", "contentIndex": 1, "id": "c2", "toolName": "f"}, partial
    )
    process_proxy_event({"type": "toolcall_delta", "contentIndex": 1, "delta": '{"b": 2}'}, partial)
    done = process_proxy_event({"type": "toolcall_end", "contentIndex": 1}, partial)
    assert isinstance(partial.content[1], ToolCallContent)
    assert done.tool_call.arguments == {"b": 2} and done.tool_call.partial_json is None


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("toolUse", "tool_use"),
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("length", "length"),
        ("weird", "stop"),
    ],
)
def test_done_reason_normalization(reason, expected):
    partial = fresh()
    event = process_proxy_event({"type": "done", "reason": reason}, partial)
    assert event.reason == expected and partial.stop_reason == expected


def test_error_event_and_unknown_type(caplog, capsys):
    partial = fresh()
    event = process_proxy_event(
        {"type": "error", "reason": "aborted", "errorMessage": "stopped"}, partial
    )
    assert (event.type, partial.stop_reason, partial.error_message) == (
        "error",
        "aborted",
        "stopped",
    )
    other = fresh()
    assert (
        process_proxy_event({"type": "error", "reason": "nope", "errorMessage": "x"}, other).reason
        == "error"
    )
    with caplog.at_level(logging.WARNING, logger="tinyagent.proxy"):
        assert process_proxy_event({"type": "mystery"}, fresh()) is None
    assert "mystery" in caplog.text
    assert capsys.readouterr().out == ""  # warnings go to logging, never stdout (differences #16)


def test_parse_streaming_json_examples():
    assert parse_streaming_json('{"a": 1') == {"a": 1}
    assert parse_streaming_json('{"a": {"b": 2') == {"a": {"b": 2}}
    assert parse_streaming_json('{"a": "x') is None
    assert parse_streaming_json('{"a": 1, "b"') is None
    assert parse_streaming_json("") is None
    assert parse_streaming_json('{"done": true}') == {"done": True}
    assert parse_streaming_json("[1]") is None


def test_transport_failure_is_an_error_event():
    async def main():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()  # nothing listens on this port any more
        response = await create_proxy_stream(
            scripted_model(), context(), "tok-secret", f"http://127.0.0.1:{port}"
        )
        return [e async for e in response], await response.result()

    events, final = run(main())
    assert [e.type for e in events] == ["error"]
    assert final.stop_reason == "error" and final.error_message
