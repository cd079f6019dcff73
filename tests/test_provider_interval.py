"""``AlchemyStreamResponse.set_delivery_interval``: fewer wake-ups for readers that do not show
tokens as they come (batch rows), the end of a turn never held back.

Against the real core and the loopback server. The partial is updated once per drained batch, so
the distinct lengths of its text seen at the text deltas count the drains.
"""

from __future__ import annotations

import asyncio

from tinyagent.agent_types import Context, SimpleStreamOptions, TextContent, UserMessage
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.testing import ModelServer, Reply

LIVENESS = 3.0  # the terminal event is not held back by the 30 s interval below
TEXT = "abcd" * 20  # 20 deltas, 10 ms apart


async def read(url: str, interval: float | None) -> tuple[str, int, list[str], bool]:
    model = OpenAICompatModel(provider="openai", id="m", base_url=url)
    context = Context(messages=[UserMessage(content=[TextContent(text="hi")])])
    response = await stream_alchemy_openai_completions(model, context, SimpleStreamOptions())
    if interval is not None:
        response.set_delivery_interval(interval)
    lengths: set[int] = set()
    kinds: list[str] = []
    deltas: list[str] = []
    async for event in response:
        kinds.append(event.type)
        if event.type == "text_delta":
            deltas.append(event.delta or "")
            lengths.add(len(event.partial.content[0].text))
    final = await response.result()
    text = "".join(b.text for b in final.content if isinstance(b, TextContent))
    return text, len(lengths), kinds, "".join(deltas) == TEXT


def test_events_come_together_and_the_end_at_once():
    with ModelServer(lambda request: Reply(text=TEXT, chunk_chars=4, delay=0.01)) as server:
        text, drains, kinds, whole = asyncio.run(asyncio.wait_for(read(server.url, 30.0), LIVENESS))
    assert text == TEXT and whole
    assert kinds.count("text_delta") == 20 and kinds[-1] == "done"
    # the first delta goes at once, every later one waits for the end of the turn
    assert drains <= 2


def test_without_an_interval_every_event_is_delivered_as_it_comes():
    with ModelServer(lambda request: Reply(text=TEXT, chunk_chars=4, delay=0.01)) as server:
        text, drains, kinds, whole = asyncio.run(asyncio.wait_for(read(server.url, None), 10))
        text0, drains0, _, _ = asyncio.run(asyncio.wait_for(read(server.url, 0.0), 10))
    assert text == text0 == TEXT and whole
    assert kinds.count("text_delta") == 20
    assert drains > 2 and drains0 > 2  # woken for (nearly) every delta
