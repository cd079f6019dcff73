"""The 1.2.28/1.2.29 modules ``tinyagent.provider_contracts`` and ``tinyagent.rust_binding_provider``:
their public names, the validators' answers and exception types, and ``stream_rust_binding``
streaming from the loopback server through the real Rust core, alone and as an Agent's stream_fn.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import subprocess
import sys
import threading
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from support.agent_support import SUM_SCHEMA, sum_tool

from tinyagent import Agent, AgentOptions, agent_types
from tinyagent.agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    Context,
    Model,
    SimpleStreamOptions,
    TextContent,
    ThinkingLevel,
    UserMessage,
    new_zero_usage,
)
from tinyagent.alchemy_provider import OpenAICompatModel
from tinyagent.provider_contracts import (
    BindingStreamResponseBase,
    ProviderMetadataModel,
    ResolvedModelMetadata,
    dump_model_payload,
    missing_keys,
    resolve_model_metadata,
    validate_assistant_message_contract,
    validate_usage_contract,
)
from tinyagent.rust_binding_provider import (
    DEFAULT_BASE_URLS,
    RustBindingModel,
    RustBindingStreamResponse,
    stream_rust_binding,
)

core = pytest.importorskip("tinyagent._alchemy")
testing = pytest.importorskip("tinyagent.testing")

LIVENESS = 5.0

# Every name either module defines in 1.2.29 (1.2.28 is identical), imports aside.
ORIGINAL_NAMES = {
    "tinyagent.provider_contracts": [
        "ReasoningEffort", "ReasoningMode", "BindingStreamHandle", "ProviderMetadataModel",
        "ResolvedModelMetadata", "BindingStreamResponseBase", "missing_keys",
        "validate_usage_contract", "validate_assistant_message_contract", "resolve_model_metadata",
        "dump_model_payload",
    ],
    "tinyagent.rust_binding_provider": [
        "ReasoningEffort", "ReasoningMode", "BindingApi", "DEFAULT_BASE_URLS", "RustBindingModel",
        "BindingModelPayload", "BindingToolPayload", "BindingContextPayload",
        "BindingOptionsPayload", "RustBindingStreamResponse", "stream_rust_binding",
    ],
}  # fmt: skip


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, LIVENESS))


def ask(text: str) -> Context:
    return Context(messages=[UserMessage(content=[TextContent(text=text)])])


def valid_message(**fields: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "stop", "usage": new_zero_usage(), **fields}  # fmt: skip


def stream_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "tinyagent-stream"}


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("module_name", sorted(ORIGINAL_NAMES))
def test_every_original_public_name_is_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in ORIGINAL_NAMES[module_name] if not hasattr(module, name)]
    assert missing == []
    assert sorted(module.__all__) == sorted(ORIGINAL_NAMES[module_name])


@pytest.mark.parametrize("module_name", sorted(ORIGINAL_NAMES))
def test_reasoning_aliases_are_the_agent_types_objects(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.ReasoningEffort is agent_types.ReasoningEffort
    assert module.ReasoningMode is agent_types.ReasoningMode


def test_import_tinyagent_does_not_load_them() -> None:
    code = (
        "import sys, tinyagent; "
        "print(sorted(m for m in ('tinyagent.provider_contracts', "
        "'tinyagent.rust_binding_provider') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- provider_contracts: validators ----------------------------------------------------------


def test_valid_usage_is_returned_as_is() -> None:
    usage = new_zero_usage()
    usage["extra"] = 1  # presence only: further keys are kept
    assert validate_usage_contract(usage, where="here") is usage


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        (None, "here: usage must be a dict"),
        ([], "here: usage must be a dict"),
        ({"cost": {}}, "here: usage missing key(s): cache_read, cache_write, input, output, total_tokens"),
        ({**new_zero_usage(), "cost": 0}, "here: usage.cost must be a dict"),
        ({**new_zero_usage(), "cost": {"input": 0.0, "output": 0.0}},
         "here: usage.cost missing key(s): cache_read, cache_write, total"),
    ],
)  # fmt: skip
def test_invalid_usage_is_a_runtime_error_naming_the_problem(usage: Any, message: str) -> None:
    with pytest.raises(RuntimeError) as info:
        validate_usage_contract(usage, where="here")
    assert str(info.value) == message


def test_assistant_message_from_a_message_or_a_dict() -> None:
    message = AssistantMessage(**valid_message())
    assert validate_assistant_message_contract(message, where="w", require_usage=True) is message
    from_dict = validate_assistant_message_contract(valid_message(), where="w", require_usage=True)
    assert isinstance(from_dict, AssistantMessage)
    assert from_dict.content == [TextContent(text="hi")]
    assert from_dict.usage == new_zero_usage()
    # Without require_usage a message without usage is fine.
    bare = validate_assistant_message_contract({"content": []}, where="w", require_usage=False)
    assert bare.usage is None


def test_assistant_message_rejections_use_the_original_exception_types() -> None:
    with pytest.raises(RuntimeError, match=r"^w: assistant message must be a dict$"):
        validate_assistant_message_contract("text", where="w", require_usage=False)
    with pytest.raises(RuntimeError, match=r"^w: usage must be a dict$"):
        validate_assistant_message_contract({"content": []}, where="w", require_usage=True)
    no_total = valid_message(usage={**new_zero_usage(), "cost": {}})
    with pytest.raises(RuntimeError, match=r"^w: usage.cost missing key\(s\): cache_read"):
        validate_assistant_message_contract(no_total, where="w", require_usage=True)
    # A dict that is not an assistant message fails pydantic validation, before any usage check.
    with pytest.raises(ValidationError):
        validate_assistant_message_contract(
            valid_message(role="user", usage=None), where="w", require_usage=True
        )
    with pytest.raises(ValidationError):
        validate_assistant_message_contract(
            valid_message(stop_reason="finished"), where="w", require_usage=False
        )


def test_missing_keys_and_dump_model_payload() -> None:
    assert missing_keys({"b": 1}, frozenset({"c", "a", "b"})) == ["a", "c"]
    assert missing_keys({"a": 1}, frozenset({"a"})) == []

    class Payload(BaseModel):
        kept: int = 1
        dropped: str | None = None

    assert dump_model_payload(Payload()) == {"kept": 1}


# -- provider_contracts: metadata -------------------------------------------------------------


def test_resolve_model_metadata() -> None:
    plain = resolve_model_metadata(Model(provider="p", id="m"), context_window=7, max_tokens=8)
    assert plain == ResolvedModelMetadata(
        name=None, headers=None, reasoning=False, context_window=7, max_tokens=8
    )
    own = ProviderMetadataModel(
        id="m", name="N", headers={"X-A": "1"}, context_window=9, max_tokens=10, reasoning="high"
    )
    assert resolve_model_metadata(own, context_window=None, max_tokens=None) == (
        ResolvedModelMetadata(
            name="N", headers={"X-A": "1"}, reasoning="high", context_window=9, max_tokens=10
        )
    )
    # In 1.2.29 OpenAICompatModel was a ProviderMetadataModel: its metadata is read the same way.
    compat = OpenAICompatModel(name="C", reasoning=True)
    resolved = resolve_model_metadata(compat, context_window=1, max_tokens=2)
    assert (resolved.name, resolved.reasoning, resolved.context_window, resolved.max_tokens) == (
        "C", True, 128_000, 4096,
    )  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.name = "other"  # type: ignore[misc]


def test_metadata_models_mask_header_values_and_reject_bad_reasoning() -> None:
    model = RustBindingModel(headers={"Authorization": "Bearer sk-secret-value"})
    assert "sk-secret-value" not in repr(model) and "'Authorization': '***'" in repr(model)
    with pytest.raises(ValidationError):
        ProviderMetadataModel(reasoning="maximum")


# -- rust_binding_provider: model and routing -------------------------------------------------


def test_rust_binding_model_fields() -> None:
    model = RustBindingModel()
    assert (model.provider, model.id, model.api, model.base_url) == (
        "openrouter", "moonshotai/kimi-k2.5", "", None,
    )  # fmt: skip
    assert (model.context_window, model.max_tokens, model.reasoning) == (128_000, 4096, False)
    assert RustBindingModel(base_url="  http://h/v1/chat/completions ").base_url == (
        "http://h/v1/chat/completions"
    )
    assert RustBindingModel(base_url="   ").base_url is None
    assert RustBindingModel(api="minimax-completions").api == "minimax-completions"
    for bad in ("openai", "OPENAI-COMPLETIONS", "responses"):
        with pytest.raises(ValidationError):
            RustBindingModel(api=bad)


def test_default_base_urls_agree_with_our_routing() -> None:
    assert list(DEFAULT_BASE_URLS) == [
        "openai", "openrouter", "chutes", "minimax", "minimax-cn", "kimi",
    ]  # fmt: skip
    assert DEFAULT_BASE_URLS["chutes"] == "https://llm.chutes.ai/v1/chat/completions"
    for provider, url in DEFAULT_BASE_URLS.items():
        if provider != "chutes":
            assert OpenAICompatModel(provider=provider).base_url == url


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (RustBindingModel(provider="  ", base_url="http://x"), "Model `provider` must be a non-empty string"),
        (RustBindingModel(id=" ", base_url="http://x"), "Model `id` must be a non-empty string"),
        (Model(provider="local", id="m", api="openai", base_url="http://x"), "Model `api` must be one of"),
        (RustBindingModel(provider="my-server", id="m"), "Model `base_url` must be set for unknown providers"),
    ],
)  # fmt: skip
def test_routing_errors_raise_before_any_request(model: Model, message: str) -> None:
    with testing.ModelServer(testing.DemoBrain()) as server:
        with pytest.raises(ValueError, match=message):
            run(stream_rust_binding(model, ask("hi"), SimpleStreamOptions()))
        assert server.requests == []


# -- rust_binding_provider: streaming ---------------------------------------------------------


async def collect(response: Any) -> tuple[list[AssistantMessageEvent], AssistantMessage]:
    events = [event async for event in response]
    return events, await response.result()


def test_stream_rust_binding_streams_a_demo_reply_through_the_core() -> None:
    async def main(url: str) -> Any:
        model = RustBindingModel(provider="local", id="demo-model", base_url=url)
        response = await stream_rust_binding(model, ask("Please repeat: pale blue dot"), None)  # type: ignore[arg-type]
        assert isinstance(response, RustBindingStreamResponse)
        return await collect(response)

    threads_before = stream_threads()
    with testing.ModelServer(testing.DemoBrain()) as server:
        events, final = run(main(server.url))
        body = server.requests[0].body
    # A real core handle is drained on the loop (the batch path), not from a worker thread.
    assert not stream_threads() - threads_before
    types = [e.type for e in events]
    assert types[0] == "start" and types[-1] == "done" and "text_delta" in types
    text = "".join(e.delta for e in events if e.type == "text_delta")
    assert "pale blue dot" in text and final.content[-1] == TextContent(text=text)
    assert (final.provider, final.model, final.api) == ("local", "demo-model", "openai-completions")
    assert final.usage is not None and final.usage["output"] > 0
    assert body["model"] == "demo-model" and body["stream"] is True
    assert body["messages"][-1] == {"role": "user", "content": "Please repeat: pale blue dot"}
    # The 4096 metadata default is not an output cap (docs/architecture.md#differences #4).
    assert "max_tokens" not in body and "max_completion_tokens" not in body


def test_model_metadata_options_and_key_reach_the_wire() -> None:
    async def main(url: str) -> Any:
        # OpenRouter: the provider whose wire dialect carries session_id
        # (docs/wire.md#provider-defaults).
        model = RustBindingModel(
            provider="openrouter", id="m", base_url=url, headers={"X-Team": "blue"}, max_tokens=77
        )
        options = SimpleStreamOptions(
            api_key="sk-local-abc123", temperature=0.5, session_id="sess-1", reasoning="low"
        )
        return await collect(await stream_rust_binding(model, ask("hi"), options))

    with testing.ModelServer(testing.DemoBrain()) as server:
        run(main(server.url))
        request = server.requests[0]
    assert request.headers.get("authorization") == "Bearer sk-local-abc123"
    assert request.headers.get("x-team") == "blue"
    body = request.body
    assert body["temperature"] == 0.5 and body["session_id"] == "sess-1"
    assert 77 in (body.get("max_tokens"), body.get("max_completion_tokens"))
    assert body["reasoning_effort"] == "low"


def test_a_plain_model_with_a_thinking_level_sends_it_as_the_effort() -> None:
    async def main(url: str) -> Any:
        model = Model(provider="local", id="m", base_url=url, thinking_level=ThinkingLevel.HIGH)
        return await collect(await stream_rust_binding(model, ask("hi"), SimpleStreamOptions()))

    with testing.ModelServer(testing.DemoBrain()) as server:
        run(main(server.url))
        body = server.requests[0].body
    assert body["reasoning_effort"] == "high"


def test_the_key_is_scrubbed_from_a_provider_error_that_echoes_it() -> None:
    key = "sk-echoed-987654"
    brain = testing.ScriptedBrain([testing.Reply(fault=testing.Fault.http(401, f"bad key {key}"))])

    async def main(url: str) -> Any:
        model = RustBindingModel(provider="local", id="m", base_url=url)
        options = SimpleStreamOptions(api_key=key, max_retries=0)
        return await collect(await stream_rust_binding(model, ask("hi"), options))

    with testing.ModelServer(brain) as server:
        events, final = run(main(server.url))
    assert events[-1].type == "error" and final.stop_reason == "error"
    assert final.error_message is not None and "***" in final.error_message
    assert key not in final.error_message


def test_signal_aborts_the_stream() -> None:
    slow = testing.Reply(text="tok " * 200, chunk_chars=4, delay=0.05)

    async def main(url: str) -> list[AssistantMessageEvent]:
        signal = asyncio.Event()
        model = RustBindingModel(provider="local", id="m", base_url=url)
        response = await stream_rust_binding(model, ask("hi"), SimpleStreamOptions(signal=signal))
        events = []
        async for event in response:
            events.append(event)
            if event.type == "text_delta":
                signal.set()
        return events

    with testing.ModelServer(testing.ScriptedBrain([slow])) as server:
        events = run(main(server.url))
        assert server.wait_for_disconnect(LIVENESS)
    assert events[-1].type == "error" and events[-1].reason == "aborted"


def test_stream_rust_binding_as_an_agent_stream_fn_with_a_tool() -> None:
    async def main(url: str) -> Any:
        agent = Agent(AgentOptions(stream_fn=stream_rust_binding))
        agent.set_model(RustBindingModel(provider="local", id="demo", base_url=url))
        agent.set_tools([sum_tool()])
        text = await agent.prompt_text("Please use sum to add 2 and 40.")
        return text, agent.state.messages

    with testing.ModelServer(testing.DemoBrain()) as server:
        text, messages = run(main(server.url))
        first, second = (r.body for r in server.requests)
    assert [m.role for m in messages] == ["user", "assistant", "tool_result", "assistant"]
    assert messages[2].content[0].text == "42" and "42" in text
    assert first["tools"][0]["function"]["name"] == "sum"
    assert first["tools"][0]["function"]["parameters"] == SUM_SCHEMA
    assert second["messages"][-1]["role"] == "tool" and second["messages"][-1]["content"] == "42"


# -- BindingStreamResponseBase ----------------------------------------------------------------


@dataclasses.dataclass
class MyResponse(BindingStreamResponseBase):
    """A subclass written as in 1.2.29: a dataclass with its own default message."""

    invalid_event_message: str = "my binding sent junk"


class ForeignHandle:
    """A handle of some other binding: only blocking next_event() and result()."""

    def __init__(self, events: list[object], final: object) -> None:
        self._events = list(events)
        self._final = final

    def next_event(self) -> object | None:
        return self._events.pop(0) if self._events else None

    def result(self) -> object:
        return self._final


def test_a_dataclass_subclass_wraps_a_real_core_handle() -> None:
    async def main(url: str) -> Any:
        model = {"id": "m", "provider": "local", "api": "openai-completions", "base_url": url}
        context = {"system_prompt": "", "messages": [ask("hi there").messages[0].model_dump()]}
        handle = core.openai_completions_stream(model, context, {})
        return await collect(MyResponse(_handle=handle))

    with testing.ModelServer(testing.DemoBrain()) as server:
        events, final = run(main(server.url))
    assert events[0].type == "start" and events[-1].type == "done"
    assert "hi there" in final.content[-1].text


def test_a_foreign_handle_is_read_and_checked() -> None:
    done = {"type": "done", "reason": "stop", "message": valid_message()}
    response = MyResponse(_handle=ForeignHandle([{"type": "start"}, done], valid_message()))
    events, final = run(collect(response))
    assert [e.type for e in events] == ["start", "done"]
    assert final.content == [TextContent(text="hi")]

    junk = MyResponse(_handle=ForeignHandle([42], valid_message()))
    with pytest.raises(RuntimeError, match="^my binding sent junk$"):
        run(collect(junk))

    no_usage = MyResponse(_handle=ForeignHandle([], valid_message(usage=None)))
    with pytest.raises(RuntimeError, match="^result: usage must be a dict$"):
        run(no_usage.result())

    cached = AssistantMessage(**valid_message())
    preset = MyResponse(_handle=ForeignHandle([], None), _final_message=cached)
    assert run(preset.result()) is cached
