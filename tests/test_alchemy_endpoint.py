"""``base_url`` forms, keys and choice selection end to end, on the real core against the loopback
model server (README "base_url", docs/wire.md#endpoint, docs/wire.md#keys and
docs/wire.md#chunks).

An OpenAI-SDK-style base (``…/v1``) reaches ``/v1/chat/completions``; a known provider without
its key may talk to a loopback server, and then sends no ``Authorization`` header; a hosted URL
without the key stays the clear start error; the notebook's pre-flight check agrees with the
core; with ``n > 1`` in ``extra_body`` only choice 0 is read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from tinyagent import Agent, AgentOptions
from tinyagent._provider_routing import PROVIDER_KEY_ENV, key_required
from tinyagent.agent_types import (
    AssistantMessage,
    Context,
    SimpleStreamOptions,
    TextContent,
    UserMessage,
)
from tinyagent.alchemy_provider import OpenAICompatModel, stream_alchemy_openai_completions
from tinyagent.notebook._config import resolve
from tinyagent.notebook._conversation import Conversation
from tinyagent.notebook._session import session_for
from tinyagent.testing import ModelServer, Reply, ScriptedBrain

KEY_VARIABLES = sorted({v for names in PROVIDER_KEY_ENV.values() for v in names})
SECRET = "sk-local-THIS-IS-A-SECRET-0123456789"


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def ask(model: OpenAICompatModel, options: SimpleStreamOptions | None = None) -> AssistantMessage:
    async def run() -> AssistantMessage:
        context = Context(messages=[UserMessage(content=[TextContent(text="hi")])])
        response = await stream_alchemy_openai_completions(
            model, context, options or SimpleStreamOptions())
        async for _ in response:
            pass
        return await response.result()

    return asyncio.run(run())


def text_of(message: AssistantMessage) -> str:
    return "".join(block.text for block in message.content if isinstance(block, TextContent))


# -- the OpenAI-SDK-style base ------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", "/", "?tenant=a", "/chat/completions"])
def test_an_sdk_style_base_reaches_chat_completions(suffix: str) -> None:
    with ModelServer(ScriptedBrain([Reply(text="reached")])) as server:
        base_url = server.base_url + suffix  # http://127.0.0.1:<port>/v1…
        message = ask(OpenAICompatModel(provider="local", id="m", base_url=base_url))
        assert [r.path for r in server.requests] == ["/v1/chat/completions"]
    assert message.stop_reason == "stop" and text_of(message) == "reached"


# -- keys on loopback and hosted URLs -----------------------------------------------------------

def test_a_known_provider_without_its_key_streams_from_a_loopback_server() -> None:
    with ModelServer(ScriptedBrain([Reply(text="local answer")])) as server:
        message = ask(OpenAICompatModel(provider="openai", id="m", base_url=server.base_url))
        (request,) = server.requests
    assert message.stop_reason == "stop", message.error_message
    assert text_of(message) == "local answer"
    assert "authorization" not in request.headers


def test_a_set_key_is_still_sent_to_a_loopback_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ModelServer(ScriptedBrain([Reply(text="ok")])) as server:
        ask(OpenAICompatModel(provider="openai", id="m", base_url=server.base_url))
        (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {SECRET}"


def test_a_hosted_url_without_its_key_is_the_clear_start_error() -> None:
    model = OpenAICompatModel(provider="openai", id="gpt-4o", base_url="https://api.openai.com/v1")
    with pytest.raises(RuntimeError) as info:
        ask(model)
    assert str(info.value) == (
        "failed to start openai-completions stream: No API key provided for provider: openai")

    agent = Agent(AgentOptions(stream_fn=stream_alchemy_openai_completions))
    agent.set_model(model)
    reply = asyncio.run(agent.prompt("hi"))
    assert isinstance(reply, AssistantMessage) and reply.stop_reason == "error"
    assert "No API key provided for provider: openai" in (reply.error_message or "")


# -- the notebook's pre-flight check ------------------------------------------------------------

@pytest.mark.parametrize(("base_url", "blocked"), [
    (None, True),  # the provider's default endpoint: hosted
    ("https://openrouter.ai/api/v1", True),
    ("http://127.0.0.1:8000/v1", False),
    ("http://localhost:11434/v1/chat/completions", False),
    ("http://192.168.1.20:8000/v1", False),
    ("http://gpu-box.local:8000/v1", False),
])
def test_the_notebook_blocks_a_missing_key_only_where_the_core_would(
        base_url: str | None, blocked: bool) -> None:
    settings = {"provider": "openrouter", "base_url": base_url}
    message = resolve(("cell", settings), environ={}).missing_key_message()
    assert (message is not None) == blocked
    assert key_required("openrouter", base_url) == blocked
    if blocked:
        assert message is not None and "OPENROUTER_API_KEY" in message


def test_key_required_is_the_cores_rule() -> None:
    assert not key_required("local-vllm", "https://vllm.example/v1")  # custom: never required
    assert not key_required("", "http://[::1]:8000/v1")  # blank provider is openai
    assert key_required("openai", "  ")  # blank: the default, hosted endpoint
    # alchemy-llm's anthropic transport cannot start without a key, even on loopback
    assert key_required("anthropic", "http://127.0.0.1:8080")


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> InteractiveShell:
    monkeypatch.setenv("TINYAGENT_RENDER", "final")
    monkeypatch.chdir(tmp_path)  # no .env from the working tree
    for name in ("TINYAGENT_MODEL", "TINYAGENT_PROVIDER", "TINYAGENT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "tinyagent.notebook")
    session = session_for(sh)
    assert session is not None
    session.settings.clear()
    session.conversations.clear()
    session.conversations["default"] = Conversation("default")
    magics = sh.find_cell_magic("agent").__self__
    magics.model = magics.provider = magics.base_url = magics.system = None
    return sh


def test_agent_magic_runs_keyless_against_a_loopback_base(shell: InteractiveShell) -> None:
    # The default provider (openrouter) has no key here; a loopback /v1 base needs none.
    with ModelServer(ScriptedBrain([Reply(text="Answer from the local server.")])) as server:
        with capture_output() as captured:
            shell.run_cell_magic("agent", f"--base-url {server.base_url}", "hello")
        (request,) = server.requests
    shown = captured.stdout + "".join(o.data.get("text/plain", "") for o in captured.outputs)
    assert "Answer from the local server." in shown
    assert "No API key" not in shown
    assert request.path == "/v1/chat/completions"
    assert "authorization" not in request.headers


# -- choice selection with n > 1 ----------------------------------------------------------------

def _sse(*chunks: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def _choice(index: int, content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


# Three interleaved choices, as OpenAI streams them for n = 3: choice 1 ends early with
# "length", choice 2 keeps going after choice 0 has finished.
N3_STREAM = _sse(
    _choice(0, "The "), _choice(1, "Uno "), _choice(2, "Eins "),
    _choice(0, "answer."), _choice(1, finish="length"), _choice(2, "zwei"),
    _choice(0, finish="stop"), _choice(2, " drei", finish="stop"),
    {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}},
)


def test_with_n_above_one_only_choice_zero_is_read() -> None:
    with ModelServer(lambda request: Reply.raw(N3_STREAM)) as server:
        model = OpenAICompatModel(provider="local", id="m", base_url=server.url,
                                  extra_body={"n": 3})
        message = ask(model)
        (request,) = server.requests
    assert request.body["n"] == 3
    assert text_of(message) == "The answer."
    assert [block.type for block in message.content] == ["text"]
    assert message.stop_reason == "stop"
    assert message.usage is not None
    assert (message.usage["input"], message.usage["output"]) == (9, 12)
