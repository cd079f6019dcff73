"""OpenAICompatModel defaults, routing, key resolution and the payload handed to the core.

docs/architecture.md#routing, #api-keys and #payload; docs/architecture.md#differences #3, #4, #5,
#15, #18. The core is replaced by a recording ``_ALCHEMY_MODULE`` stand-in, so nothing here touches
the network.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from support.provider_support import use_core

import tinyagent.agent_types as agent_types
from tinyagent import alchemy_provider as ap
from tinyagent._provider_routing import PROVIDER_KEY_ENV
from tinyagent.agent_types import (
    AgentTool,
    AssistantMessage,
    Context,
    CustomAgentMessage,
    ImageContent,
    Model,
    SimpleStreamOptions,
    TextContent,
    ThinkingLevel,
    ToolResultMessage,
    UserMessage,
)
from tinyagent.alchemy_provider import DEFAULT_OPENAI_COMPAT_CHAT_COMPLETIONS_URL, OpenAICompatModel

KEY_VARIABLES = sorted({v for names in PROVIDER_KEY_ENV.values() for v in names})


class RecordingCore:
    """Stands in for tinyagent._alchemy and keeps every payload it was handed."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = []

    def openai_completions_stream(
        self, model: dict[str, Any], context: dict[str, Any], options: dict[str, Any]
    ) -> Any:
        self.calls.append((model, context, options))
        return _FinishedHandle()


class _FinishedHandle:
    def next_event(self) -> None:
        return None

    def result(self) -> dict[str, Any]:
        return {"role": "assistant", "usage": agent_types.new_zero_usage()}


@pytest.fixture
def core(monkeypatch: pytest.MonkeyPatch) -> RecordingCore:
    for variable in KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    recorder = RecordingCore()
    monkeypatch.setattr(ap, "_ALCHEMY_MODULE", recorder)
    return recorder


def send(
    core: RecordingCore,
    model: Model,
    context: Context | None = None,
    options: SimpleStreamOptions | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    asyncio.run(
        ap.stream_alchemy_openai_completions(
            model, context or Context(), options or SimpleStreamOptions()
        )
    )
    return core.calls[-1]


# --- OpenAICompatModel (docs/architecture.md#routing) ---------------------------------------


def test_model_defaults() -> None:
    model = OpenAICompatModel()
    assert (model.provider, model.id) == ("openrouter", "moonshotai/kimi-k2.5")
    assert model.api == "openai-completions"
    assert model.base_url == "https://openrouter.ai/api/v1/chat/completions"
    assert (model.name, model.headers, model.compat, model.extra_body) == (None, None, None, None)
    assert (model.context_window, model.max_tokens, model.reasoning) == (128_000, 4096, False)
    assert model.thinking_level is ThinkingLevel.OFF
    assert (model.connect_timeout, model.first_byte_timeout, model.idle_timeout) == (None,) * 3
    assert model.max_retries is None


@pytest.mark.parametrize(
    ("provider", "api", "base_url"),
    [
        ("openai", "openai-completions", "https://api.openai.com/v1/chat/completions"),
        ("openrouter", "openai-completions", "https://openrouter.ai/api/v1/chat/completions"),
        ("minimax", "minimax-completions", "https://api.minimax.io/v1/chat/completions"),
        ("minimax-cn", "minimax-completions", "https://api.minimax.chat/v1/chat/completions"),
        ("anthropic", "anthropic-messages", "https://api.anthropic.com"),
        ("kimi", "anthropic-messages", "https://api.kimi.com/coding"),
        ("groq", "openai-completions", DEFAULT_OPENAI_COMPAT_CHAT_COMPLETIONS_URL),
        ("my-local-vllm", "openai-completions", DEFAULT_OPENAI_COMPAT_CHAT_COMPLETIONS_URL),
    ],
)
def test_api_and_base_url_inferred_from_provider(provider: str, api: str, base_url: str) -> None:
    model = OpenAICompatModel(provider=provider)
    assert (model.api, model.base_url) == (api, base_url)


def test_explicit_api_and_base_url_are_kept() -> None:
    model = OpenAICompatModel(provider="minimax", api="openai-completions", base_url="http://x/y")
    assert (model.api, model.base_url) == ("openai-completions", "http://x/y")
    assert OpenAICompatModel(provider="kimi", api="openai-completions").base_url == (
        DEFAULT_OPENAI_COMPAT_CHAT_COMPLETIONS_URL
    )


def test_inferred_values_do_not_count_as_explicitly_set() -> None:
    assert OpenAICompatModel(provider="openai").model_fields_set == {"provider"}


def test_header_values_are_masked_in_repr_and_str() -> None:
    model = OpenAICompatModel(headers={"Authorization": "Bearer sk-secret-123", "X-Title": "t"})
    for text in (repr(model), str(model)):
        assert "sk-secret-123" not in text
        assert "'Authorization': '***'" in text
    assert model.headers == {"Authorization": "Bearer sk-secret-123", "X-Title": "t"}


def test_reasoning_aliases_are_the_agent_types_objects() -> None:
    assert ap.ReasoningEffort is agent_types.ReasoningEffort
    assert ap.ReasoningMode is agent_types.ReasoningMode


def test_invalid_reasoning_effort_is_rejected() -> None:
    with pytest.raises(ValueError):
        OpenAICompatModel(reasoning="extreme")


# --- routing and keys (docs/architecture.md#routing, #api-keys) ----------------------------


@pytest.mark.parametrize(
    ("raw_api", "routed"),
    [
        ("openai", "openai-completions"),
        ("openai-compatible", "openai-completions"),
        (" Chat-Completions ", "openai-completions"),
        ("minimax", "minimax-completions"),
        ("OPENAI-COMPLETIONS", "openai-completions"),
        ("anthropic-messages", "anthropic-messages"),
        ("openai-responses", "openai-responses"),
    ],
)
def test_api_aliases(core: RecordingCore, raw_api: str, routed: str) -> None:
    model, _, _ = send(core, Model(provider="custom", id="m", api=raw_api))
    assert model["api"] == routed


@pytest.mark.parametrize(
    ("provider", "api"),
    [
        ("MiniMax", "minimax-completions"),
        ("kimi", "anthropic-messages"),
        ("", "openai-completions"),
    ],
)
def test_blank_api_is_inferred_from_the_provider(
    core: RecordingCore, provider: str, api: str
) -> None:
    model, _, _ = send(core, Model(provider=provider, id="m", api=""))
    assert model["api"] == api


def test_provider_is_stripped_and_defaults_to_openai(core: RecordingCore) -> None:
    assert send(core, Model(provider="  ", id="m"))[0]["provider"] == "openai"
    assert send(core, Model(provider=" groq ", id="m"))[0]["provider"] == "groq"


def test_base_url_for_a_plain_model(core: RecordingCore) -> None:
    assert send(core, Model(provider="openrouter", id="m"))[0]["base_url"] == (
        "https://openrouter.ai/api/v1/chat/completions"
    )
    extra = Model(provider="openai", id="m", base_url=" http://127.0.0.1:9/v1/chat/completions ")
    assert send(core, extra)[0]["base_url"] == "http://127.0.0.1:9/v1/chat/completions"


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_base_url_is_rejected_before_the_core(core: RecordingCore, blank: str) -> None:
    with pytest.raises(ValueError, match=r"^Model `base_url` must be a non-empty string$"):
        send(core, OpenAICompatModel(base_url=blank))
    assert core.calls == []


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("openrouter", "OPENROUTER_API_KEY"),
        ("minimax", "MINIMAX_API_KEY"),
        ("minimax-cn", "MINIMAX_CN_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("groq", "GROQ_API_KEY"),
        ("cerebras", "CEREBRAS_API_KEY"),
        ("xai", "XAI_API_KEY"),
        ("mistral", "MISTRAL_API_KEY"),
        ("google", "GEMINI_API_KEY"),
        ("kimi", "KIMI_API_KEY"),
        ("zai", "ZAI_API_KEY"),
        ("featherless", "FEATHERLESS_API_KEY"),
        ("vercel-ai-gateway", "AI_GATEWAY_API_KEY"),
        ("chutes", "CHUTES_API_KEY"),
    ],
)
def test_key_from_the_provider_environment_variable(
    core: RecordingCore, monkeypatch: pytest.MonkeyPatch, provider: str, variable: str
) -> None:
    monkeypatch.setenv(variable, f"key-for-{provider}")
    _, _, options = send(core, Model(provider=provider.upper(), id="m"))
    assert options["api_key"] == f"key-for-{provider}"


def test_key_precedence(core: RecordingCore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    model = Model(provider="openai", id="m")
    assert send(core, model, options=SimpleStreamOptions(api_key="explicit"))[2]["api_key"] == (
        "explicit"
    )
    assert send(core, model, options=SimpleStreamOptions(api_key=""))[2]["api_key"] == "from-env"
    monkeypatch.setenv("ANTHROPIC_OAUTH_TOKEN", "oauth")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "plain")
    assert send(core, Model(provider="anthropic", id="m"))[2]["api_key"] == "oauth"


def test_custom_provider_without_key_sends_none(
    core: RecordingCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "not-for-custom")
    assert send(core, Model(provider="local", id="m"))[2]["api_key"] is None


@pytest.mark.parametrize(
    ("model_reasoning", "options_reasoning", "level", "sent"),
    [
        (False, None, ThinkingLevel.OFF, False),
        (True, "high", ThinkingLevel.LOW, True),
        ("low", "high", ThinkingLevel.MEDIUM, "low"),
        (False, "high", ThinkingLevel.LOW, "high"),
        (False, None, ThinkingLevel.MEDIUM, "medium"),
        (False, None, "xhigh", "xhigh"),
    ],
)
def test_reasoning_precedence(
    core: RecordingCore,
    model_reasoning: Any,
    options_reasoning: Any,
    level: Any,
    sent: Any,
) -> None:
    model = OpenAICompatModel(reasoning=model_reasoning)
    model.thinking_level = level
    options = SimpleStreamOptions(reasoning=options_reasoning)
    assert send(core, model, options=options)[0]["reasoning"] == sent


def test_plain_model_forwards_its_thinking_level(core: RecordingCore) -> None:
    model = Model(provider="openai", id="m", thinking_level=ThinkingLevel.HIGH)
    assert send(core, model)[0]["reasoning"] == "high"


# --- payload (docs/architecture.md#payload) ------------------------------------------------

MODEL_KEYS = {
    "id", "provider", "api", "base_url", "name", "headers", "reasoning", "context_window",
    "max_tokens",
}  # fmt: skip


def test_model_dict_for_a_plain_model(core: RecordingCore) -> None:
    model, _, _ = send(core, Model(provider="openai", id="gpt-x"))
    assert model == {
        "id": "gpt-x",
        "provider": "openai",
        "api": "openai-completions",
        "base_url": "https://api.openai.com/v1/chat/completions",
        "name": None,
        "headers": None,
        "reasoning": False,
        "context_window": None,
        "max_tokens": None,
    }


def test_model_dict_for_openai_compat_model(core: RecordingCore) -> None:
    model = OpenAICompatModel(name="Kimi", headers={"X-Title": "demo"}, context_window=1000)
    sent, _, _ = send(core, model)
    assert set(sent) == MODEL_KEYS
    assert (sent["name"], sent["headers"], sent["context_window"]) == (
        "Kimi",
        {"X-Title": "demo"},
        1000,
    )
    assert sent["max_tokens"] is None  # default 4096 is metadata only (differences #4)


def test_max_tokens_sent_when_passed_or_assigned(core: RecordingCore) -> None:
    assert send(core, OpenAICompatModel(max_tokens=4096))[0]["max_tokens"] == 4096
    model = OpenAICompatModel()
    model.max_tokens = 777
    assert send(core, model)[0]["max_tokens"] == 777


def test_compat_key_only_when_set(core: RecordingCore) -> None:
    compat = {"supports_store": False, "max_tokens_field": "max_tokens"}
    sent, _, _ = send(core, OpenAICompatModel(compat=compat))
    assert set(sent) == MODEL_KEYS | {"compat"}
    assert sent["compat"] == compat


def test_context_dict(core: RecordingCore) -> None:
    tools = [
        AgentTool(name="sum", description="adds", parameters={"type": "object"}, label="Sum"),
        AgentTool(name="now", description="time"),
    ]
    user = UserMessage(content=[TextContent(text="hi")], timestamp=1)
    _, context, _ = send(
        core, OpenAICompatModel(), Context(system_prompt="be terse", messages=[user], tools=tools)
    )
    assert context == {
        "system_prompt": "be terse",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}], "timestamp": 1}],
        "tools": [
            {"name": "sum", "description": "adds", "parameters": {"type": "object"}},
            {
                "name": "now",
                "description": "time",
                "parameters": {"type": "object", "properties": {}},
            },
        ],
    }


def test_context_without_tools_or_prompt(core: RecordingCore) -> None:
    _, context, _ = send(core, OpenAICompatModel(), Context(system_prompt="", tools=[]))
    assert context == {"system_prompt": "", "messages": [], "tools": None}


def test_options_dict_minimal(core: RecordingCore) -> None:
    _, _, options = send(core, OpenAICompatModel(provider="local"))
    assert options == {"api_key": None, "temperature": None, "max_tokens": None}


def test_options_dict_full(core: RecordingCore) -> None:
    model = OpenAICompatModel(
        provider="local",
        headers={"X-Model": "1"},
        max_retries=5,
        connect_timeout=1.0,
        idle_timeout=9.0,
        extra_body={"top_p": 0.5},
    )
    options = SimpleStreamOptions(
        api_key="k",
        temperature=0.2,
        max_tokens=64,
        session_id="s1",
        headers={"X-Call": "2"},
        max_retries=0,
        first_byte_timeout=3.0,
    )
    model_dict, _, sent = send(core, model, options=options)
    assert sent == {
        "api_key": "k",
        "temperature": 0.2,
        "max_tokens": 64,
        "session_id": "s1",
        "headers": {"X-Call": "2"},
        "max_retries": 0,
        "connect_timeout": 1.0,
        "first_byte_timeout": 3.0,
        "idle_timeout": 9.0,
        "extra_body": {"top_p": 0.5},
    }
    assert model_dict["headers"] == {"X-Model": "1"}


# --- boundary checks ------------------------------------------------------------------------

PNG = "data:image/png;base64,iVBORw0KGgo="


def _context_with_image(url: str) -> Context:
    return Context(
        messages=[
            UserMessage(content=[TextContent(text="look")]),
            UserMessage(content=[TextContent(text="and"), ImageContent(url=url)]),
        ]
    )


@pytest.mark.parametrize("url", [PNG, "https://example.com/cat.png", "http://h/x.jpg"])
def test_valid_images_pass(core: RecordingCore, url: str) -> None:
    _, context, _ = send(core, OpenAICompatModel(), _context_with_image(url))
    assert context["messages"][1]["content"][1] == {"type": "image", "url": url}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "image block has no URL"),
        ("ftp://host/x.png", "image URL must be an http(s) URL"),
        ("cat.png", "image URL must be an http(s) URL"),
        ("data:image/png,iVBORw0KGgo=", "malformed data URL"),
        ("data:text/plain;base64,aGk=", "data URL is not an image: text/plain"),
        ("data:image/png;base64,***", "data URL payload is not valid base64"),
        ("data:image/png;base64,", "data URL has no image data"),
    ],
)
def test_bad_image_url_is_rejected_before_the_core(
    core: RecordingCore, url: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=r"^context\.messages\[1\]\.content\[1\]: ") as info:
        send(core, OpenAICompatModel(), _context_with_image(url))
    assert reason in str(info.value)
    assert core.calls == []


def test_anthropic_path_cannot_carry_image_urls(core: RecordingCore) -> None:
    with pytest.raises(ValueError, match=r"^context\.messages\[1\]\.content\[1\]: .*data: URL"):
        send(core, OpenAICompatModel(provider="anthropic"), _context_with_image("https://h/i.png"))
    send(core, OpenAICompatModel(provider="anthropic"), _context_with_image(PNG))


def test_tool_result_images_are_checked(core: RecordingCore) -> None:
    result = ToolResultMessage(tool_call_id="c", content=[ImageContent(url="nope")])
    with pytest.raises(ValueError, match=r"^context\.messages\[0\]\.content\[0\]: "):
        send(core, OpenAICompatModel(), Context(messages=[result]))


def test_custom_role_is_rejected(core: RecordingCore) -> None:
    messages = [UserMessage(), AssistantMessage(), CustomAgentMessage(role="note")]
    with pytest.raises(ValueError, match=r"^context\.messages\[2\]: unsupported role 'note'$"):
        send(core, OpenAICompatModel(), Context(messages=messages))
    assert core.calls == []


def test_message_without_model_dump_is_a_type_error(core: RecordingCore) -> None:
    bad: Any = {"role": "user", "content": []}
    with pytest.raises(TypeError, match="context.messages: expected model payload"):
        send(core, OpenAICompatModel(), Context(messages=[bad]))


def test_core_input_error_text_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    def echoing(model: Any, context: Any, options: Any) -> Any:
        raise ValueError(f"invalid options: bad key {options['api_key']}")

    use_core(monkeypatch, echoing)
    with pytest.raises(ValueError) as info:
        asyncio.run(
            ap.stream_alchemy_openai_completions(
                OpenAICompatModel(), Context(), SimpleStreamOptions(api_key="sk-live-999")
            )
        )
    assert "sk-live-999" not in str(info.value)
    assert "bad key ***" in str(info.value)


def test_experimental_warning_logged_once(
    core: RecordingCore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ap, "_experimental_warned", False)
    with caplog.at_level(logging.WARNING, logger="tinyagent.alchemy_provider"):
        send(core, OpenAICompatModel(provider="openai"))
        assert not caplog.records
        send(core, OpenAICompatModel(provider="anthropic"))
        send(core, OpenAICompatModel(provider="kimi"))
    warnings = [r for r in caplog.records if "experimental" in r.getMessage()]
    assert len(warnings) == 1
