"""Python's routing tables (``tinyagent._provider_routing``) and the Rust core's own rules agree.

Both sides need them: Python fills in a model's api, URL and key before the core sees it, and the
core applies them again to whatever dicts it is handed (``tinyagent._alchemy`` is public). These
tests put every provider and alias through both and compare, so neither can drift alone.
"""

from __future__ import annotations

import pytest
from support.core_inputs import context, model_for, options

from tinyagent import _alchemy
from tinyagent._provider_routing import _API_ALIASES, PROVIDER_KEY_ENV, canonical_api, infer_api
from tinyagent.testing import ModelServer, ScriptedBrain

HOSTED = "https://api.example.com/v1/chat/completions"
#: alchemy-llm's known providers that authenticate with credential files, not keys
CREDENTIAL_FILE_PROVIDERS = ("amazon-bedrock", "google-vertex")
UNKNOWN = ("local", "demo", "huggingface", "deepseek", "ollama", "my-gateway")
ALL_VARIABLES = sorted({v for names in PROVIDER_KEY_ENV.values() for v in names})


@pytest.mark.parametrize(
    "provider", [*PROVIDER_KEY_ENV, *CREDENTIAL_FILE_PROVIDERS, *UNKNOWN]
)
def test_the_providers_that_need_a_key_are_the_ones_python_has_variables_for(provider: str):
    assert _alchemy.api_key_required(provider, "openai-completions", HOSTED) == (
        provider in PROVIDER_KEY_ENV
    )
    # case and spacing do not matter on either side
    assert _alchemy.api_key_required(f" {provider.upper()} ", "openai-completions", HOSTED) == (
        provider in PROVIDER_KEY_ENV
    )


CASES = [(p, v) for p, names in PROVIDER_KEY_ENV.items() for v in names]


@pytest.mark.parametrize(("provider", "variable"), CASES, ids=[f"{p}-{v}" for p, v in CASES])
def test_the_core_reads_the_same_key_variable_as_python(
    monkeypatch: pytest.MonkeyPatch, provider: str, variable: str
):
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, f"key-{variable}")
    with ModelServer(ScriptedBrain(["ok"])) as server:
        # No api_key in the options: the core looks it up itself (a set key is sent even to a
        # loopback server). The OpenAI-compatible api keeps anthropic/kimi on the owned transport.
        model = model_for(server.url, provider=provider, api="openai-completions")
        final = _alchemy.collect_openai_completions(model, context(), options())["final_message"]
        sent = server.requests[0].headers.get("authorization")
    assert final["stop_reason"] == "stop", final.get("error_message")
    assert sent == f"Bearer key-{variable}"


ALIASES = [*_API_ALIASES, "openai-completions", "minimax-completions", "anthropic-messages"]


@pytest.mark.parametrize("raw", [*ALIASES, *(f" {a.upper()} " for a in ALIASES)])
@pytest.mark.parametrize("provider", ["openai", "minimax", "anthropic", "kimi", "custom"])
def test_api_aliases_route_the_same(raw: str, provider: str):
    assert canonical_api(raw, provider) == _alchemy.normalize_api(raw, provider)


@pytest.mark.parametrize("provider", [*PROVIDER_KEY_ENV, *CREDENTIAL_FILE_PROVIDERS, *UNKNOWN])
def test_a_blank_api_is_inferred_the_same(provider: str):
    assert infer_api(provider) == canonical_api("", provider) == _alchemy.normalize_api("", provider)
