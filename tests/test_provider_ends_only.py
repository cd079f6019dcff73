"""``AlchemyStreamResponse.deliver_ends_only``: a reader that wants the final message only (batch
rows) gets the stream's start, its retries and its end, and the same final message as a reader
of every token.

Against the real core and the loopback server.
"""

from __future__ import annotations

import asyncio

from tinyagent.agent_types import (
    Context,
    SimpleStreamOptions,
    TextContent,
    ToolCallContent,
    UserMessage,
)
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.testing import Fault, ModelServer, Reply, ToolCallSpec

TEXT = "abcd" * 20  # 20 deltas


async def read(url: str, ends_only: bool, retries: int = 0) -> tuple[list[str], object]:
    model = OpenAICompatModel(provider="openai", id="m", base_url=url)
    context = Context(messages=[UserMessage(content=[TextContent(text="hi")])])
    options = SimpleStreamOptions(max_retries=retries)
    response = await stream_alchemy_openai_completions(model, context, options)
    if ends_only:
        response.deliver_ends_only()
    kinds = [event.type async for event in response]
    return kinds, await response.result()


def run(url: str, ends_only: bool, retries: int = 0) -> tuple[list[str], object]:
    return asyncio.run(asyncio.wait_for(read(url, ends_only, retries), 10))


def test_only_the_start_and_the_end_are_delivered_and_the_final_message_is_whole():
    reply = Reply(
        text=TEXT,
        chunk_chars=4,
        tool_calls=[ToolCallSpec(name="lookup", arguments={"city": "Oslo"}, fragment_chars=3)],
        delay=0.005,
    )
    with ModelServer(lambda request: reply) as server:
        every_kind, every_final = run(server.url, ends_only=False)
        kinds, final = run(server.url, ends_only=True)
    assert every_kind.count("text_delta") == 20 and "tool_call_delta" in every_kind
    assert kinds == ["start", "done"]
    assert final.model_dump(exclude={"timestamp"}) == every_final.model_dump(exclude={"timestamp"})
    text = "".join(b.text for b in final.content if isinstance(b, TextContent))
    calls = [b for b in final.content if isinstance(b, ToolCallContent)]
    assert text == TEXT
    assert [(c.name, c.arguments) for c in calls] == [("lookup", {"city": "Oslo"})]


def test_retries_and_errors_still_reach_the_reader():
    replies = iter([Reply(fault=Fault.http(503)), Reply(text="ok")])
    with ModelServer(lambda request: next(replies)) as server:
        kinds, final = run(server.url, ends_only=True, retries=1)
    assert kinds == ["retry", "start", "done"]
    assert final.stop_reason == "stop"
    with ModelServer(lambda request: Reply(fault=Fault.http(400, message="bad model"))) as server:
        kinds, final = run(server.url, ends_only=True)
    assert kinds == ["start", "error"] or kinds == ["error"]
    assert final.stop_reason == "error" and "bad model" in (final.error_message or "")
