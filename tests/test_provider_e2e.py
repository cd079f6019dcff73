"""End to end: stream_alchemy_openai_completions on the real Rust core against the loopback server.

Covers the batch bridge with real handles (docs/wire.md#requirements: R1, R11, R17): a whole reply,
abort by signal, ``aclose()`` and task cancellation closing the connection, the retry notification,
and 1,000 concurrent slow streams on one event loop without starving the default executor.
"""

from __future__ import annotations

import asyncio
import resource
import threading
import time
from typing import Any

import pytest
from support.agent_support import sum_tool

from tinyagent import testing
from tinyagent.agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    Context,
    SimpleStreamOptions,
    TextContent,
    UserMessage,
)
from tinyagent.alchemy_provider import (
    AlchemyStreamResponse,
    OpenAICompatModel,
    stream_alchemy_openai_completions,
)

LIVENESS = 3.0


def model_for(url: str, **fields: Any) -> OpenAICompatModel:
    return OpenAICompatModel(provider="local", id="demo", base_url=url, **fields)


def ask(text: str) -> Context:
    return Context(messages=[UserMessage(content=[TextContent(text=text)])])


async def open_stream(
    url: str, prompt: str = "hello", options: SimpleStreamOptions | None = None, **fields: Any
) -> AlchemyStreamResponse:
    return await stream_alchemy_openai_completions(
        model_for(url, **fields), ask(prompt), options or SimpleStreamOptions()
    )


async def collect(response: AlchemyStreamResponse) -> list[AssistantMessageEvent]:
    return [event async for event in response]


def stream_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "tinyagent-stream"}


def test_demo_model_reply_through_the_batch_bridge() -> None:
    async def main(url: str) -> tuple[list[AssistantMessageEvent], AssistantMessage]:
        response = await open_stream(url, "Please repeat: the quick brown fox")
        events = await collect(response)
        return events, await response.result()

    threads_before = stream_threads()
    with testing.ModelServer(testing.DemoBrain()) as server:
        events, final = asyncio.run(asyncio.wait_for(main(server.url), LIVENESS))
    # The real handle is drained on the loop: no worker thread was started for it.
    assert not stream_threads() - threads_before
    types = [e.type for e in events]
    assert types[0] == "start" and types[-1] == "done"
    assert "text_delta" in types
    text = "".join(e.delta for e in events if e.type == "text_delta")
    assert text and final.content[-1] == TextContent(text=text)
    assert final.stop_reason == "stop" and events[-1].message == final
    partials = {id(e.partial) for e in events if e.partial is not None}
    assert len(partials) == 1


def test_tool_call_arguments_stream_into_the_partial() -> None:
    reply = testing.Reply(tool_calls=[testing.ToolCallSpec("sum", {"a": 1, "b": 2})], chunk_chars=3)

    async def main(url: str) -> list[AssistantMessageEvent]:
        return await collect(await open_stream(url))

    with testing.ModelServer(testing.ScriptedBrain([reply])) as server:
        events = asyncio.run(asyncio.wait_for(main(server.url), LIVENESS))
    end = next(e for e in events if e.type == "tool_call_end")
    assert end.tool_call.name == "sum" and end.tool_call.arguments == {"a": 1, "b": 2}
    raw = "".join(e.delta for e in events if e.type == "tool_call_delta")
    assert raw and events[-1].reason == "tool_calls"


def slow_reply(deltas: int = 200, delay: float = 0.05) -> Any:
    return testing.Reply(text="tok " * deltas, chunk_chars=4, delay=delay)


def test_signal_abort_closes_the_connection() -> None:
    async def main(url: str) -> list[AssistantMessageEvent]:
        signal = asyncio.Event()
        response = await open_stream(url, options=SimpleStreamOptions(signal=signal))
        events = []
        async for event in response:
            events.append(event)
            if event.type == "text_delta":
                signal.set()
        return events

    with testing.ModelServer(testing.ScriptedBrain([slow_reply()])) as server:
        events = asyncio.run(asyncio.wait_for(main(server.url), LIVENESS))
        assert server.wait_for_disconnect(LIVENESS)
    assert events[-1].type == "error" and events[-1].reason == "aborted"
    assert events[-1].error.stop_reason == "aborted"
    assert events[-1].error.error_message == "Request was aborted"


def test_aclose_closes_the_connection() -> None:
    async def main(url: str) -> AssistantMessage:
        response = await open_stream(url)
        async for event in response:
            if event.type == "text_delta":
                break
        await response.aclose()
        return await response.result()

    with testing.ModelServer(testing.ScriptedBrain([slow_reply()])) as server:
        final = asyncio.run(asyncio.wait_for(main(server.url), LIVENESS))
        assert server.wait_for_disconnect(LIVENESS)
    assert final.stop_reason == "aborted"


def test_cancelling_the_consumer_task_closes_the_connection() -> None:
    async def main(url: str) -> None:
        response = await open_stream(url)
        first_delta = asyncio.Event()

        async def consume() -> None:
            async for event in response:
                if event.type == "text_delta":
                    first_delta.set()

        task = asyncio.create_task(consume())
        await first_delta.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with testing.ModelServer(testing.ScriptedBrain([slow_reply()])) as server:
        asyncio.run(asyncio.wait_for(main(server.url), LIVENESS))
        assert server.wait_for_disconnect(LIVENESS)


def test_retry_is_reported_before_the_stream() -> None:
    script = testing.ScriptedBrain(
        [testing.Reply(fault=testing.Fault.http(503, retry_after=0.1)), testing.Reply(text="ok")]
    )

    async def main(url: str) -> list[AssistantMessageEvent]:
        return await collect(await open_stream(url))

    with testing.ModelServer(script) as server:
        events = asyncio.run(asyncio.wait_for(main(server.url), LIVENESS))
        assert len(server.requests) == 2
    assert [e.type for e in events][:2] == ["retry", "start"]
    retry = events[0]
    assert retry.attempt == 1 and isinstance(retry.delay, float) and "503" in retry.reason
    assert events[-1].type == "done"
    assert "".join(e.delta for e in events if e.type == "text_delta") == "ok"


def test_thousand_slow_streams_on_one_loop_without_starvation() -> None:
    streams, deltas, delay = 1000, 20, 0.05  # 20 tokens/s each
    reply = testing.Reply(text="abcd" * deltas, chunk_chars=4, delay=delay)

    async def one(url: str) -> tuple[int, float]:
        response = await open_stream(url)
        count, worst_gap, last = 0, 0.0, time.monotonic()
        async for event in response:
            if event.type == "text_delta":
                now = time.monotonic()
                worst_gap = max(worst_gap, now - last)
                last = now
                count += len(event.delta or "") // 4
            elif event.type == "error":
                raise AssertionError(event.error.error_message)
        return count, worst_gap

    async def main(url: str) -> tuple[list[tuple[int, float]], float]:
        tasks = [asyncio.create_task(one(url)) for _ in range(streams)]
        await asyncio.sleep(0.5)  # every stream is open and waiting on the server
        started = time.monotonic()
        await asyncio.to_thread(int)
        executor_wait = time.monotonic() - started
        return await asyncio.gather(*tasks), executor_wait

    # 1,000 sockets on each side: lift a low soft fd limit (the server child inherits it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * streams if hard == resource.RLIM_INFINITY else min(hard, 4 * streams)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    with testing.spawn_server(reply) as server:
        results, executor_wait = asyncio.run(asyncio.wait_for(main(server.url), 60))
    assert executor_wait < LIVENESS
    assert all(count == deltas for count, _ in results)
    assert max(gap for _, gap in results) < LIVENESS


def test_agent_runs_a_tool_through_the_provider() -> None:
    from tinyagent import Agent, AgentOptions

    async def main(url: str) -> Any:
        agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
        agent.set_model(model_for(url))
        agent.set_tools([sum_tool()])
        reply = await agent.prompt("Please use sum to add 2 and 40.")
        return reply, agent.state.messages

    with testing.ModelServer(testing.DemoBrain()) as server:
        reply, messages = asyncio.run(asyncio.wait_for(main(server.url), LIVENESS))
    assert [m.role for m in messages] == ["user", "assistant", "tool_result", "assistant"]
    assert messages[2].content[0].text == "42"
    assert reply.stop_reason == "stop" and "42" in reply.content[-1].text


def test_agent_abort_mid_stream_closes_the_connection() -> None:
    from tinyagent import Agent, AgentOptions

    async def main(url: str) -> Any:
        agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
        agent.set_model(model_for(url))

        def on_event(event: Any) -> None:
            inner = getattr(event, "assistant_message_event", None)
            if inner is not None and inner.type == "text_delta":
                agent.abort()

        agent.subscribe(on_event)
        return await agent.prompt("hello")

    with testing.ModelServer(testing.ScriptedBrain([slow_reply()])) as server:
        reply = asyncio.run(asyncio.wait_for(main(server.url), LIVENESS))
        assert server.wait_for_disconnect(LIVENESS)
    assert reply.stop_reason == "aborted" and reply.error_message == "Request was aborted"
