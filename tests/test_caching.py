"""Prompt-cache breakpoints (docs/architecture.md#caching)."""

from __future__ import annotations

from support.agent_support import run, scripted_agent

from tinyagent import AssistantMessage, ImageContent, TextContent, UserMessage
from tinyagent.caching import EPHEMERAL_CACHE, add_cache_breakpoints


def user(*blocks, timestamp=1718000000000):
    return UserMessage(content=list(blocks), timestamp=timestamp)


def test_marks_every_user_message_ending_with_text_on_copies():
    first = user(TextContent(text="one"))
    image_last = user(TextContent(text="look"), ImageContent(url="https://x/y.png"))
    assistant = AssistantMessage(content=[TextContent(text="reply")])
    second = user(ImageContent(url="https://x/y.png"), TextContent(text="two"))
    messages = [first, image_last, assistant, second]
    marked = run(add_cache_breakpoints(messages))
    assert marked is not messages
    assert marked[1] is image_last and marked[2] is assistant
    assert marked[0] is not first and marked[3] is not second
    assert marked[0].content[-1].cache_control.type == "ephemeral"
    assert marked[3].content[-1].cache_control.type == "ephemeral"
    assert marked[3].content[0] is not second.content[0]  # deep copy
    # Originals are never mutated.
    assert first.content[0].cache_control is None and second.content[-1].cache_control is None
    assert [m for m in messages] == [first, image_last, assistant, second]


def test_same_list_object_when_nothing_changes():
    messages = [
        AssistantMessage(content=[TextContent(text="x")]),
        user(ImageContent(url="https://x/y.png")),
    ]
    assert run(add_cache_breakpoints(messages)) is messages
    empty: list = []
    assert run(add_cache_breakpoints(empty)) is empty


def test_dumped_shape():
    marked = run(add_cache_breakpoints([user(TextContent(text="hi"))]))
    assert marked[0].model_dump(exclude_none=True) == {
        "role": "user",
        "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
        "timestamp": 1718000000000,
    }
    assert EPHEMERAL_CACHE.type == "ephemeral"


def test_agent_runs_caching_before_the_user_transform_and_keeps_state_clean():
    seen_by_transform = []

    def transform(messages, signal):
        seen_by_transform.append(
            [m.content[-1].cache_control for m in messages if m.role == "user"]
        )
        return messages

    agent, stream_fn, _ = scripted_agent(
        ["a", "b"], enable_prompt_caching=True, transform_context=transform
    )
    run(agent.prompt("first"))
    run(agent.prompt("second"))
    assert all(c is not None and c.type == "ephemeral" for c in seen_by_transform[1])
    sent = stream_fn.calls[1].context.messages
    assert [m.content[-1].cache_control.type for m in sent if m.role == "user"] == [
        "ephemeral",
        "ephemeral",
    ]
    assert all(
        m.content[-1].cache_control is None for m in agent.state.messages if m.role == "user"
    )


def test_caching_is_off_by_default_and_switchable_per_run():
    agent, stream_fn, _ = scripted_agent(["a", "b"])
    run(agent.prompt("first"))
    agent.enable_prompt_caching = True
    run(agent.prompt("second"))
    assert stream_fn.calls[0].context.messages[0].content[0].cache_control is None
    assert stream_fn.calls[1].context.messages[-1].content[0].cache_control.type == "ephemeral"
