"""``%%agent`` / ``%agent`` through a bare IPython shell: the run_cell_magic (worker-loop) path and
the input-transformer path via ``run_cell``."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from support.notebook_fakes import Step, scripted_agent
from support.notebook_shell import fresh_shell, outputs_text, session_of, use_script

from tinyagent.agent_types import AgentTool, AgentToolResult, TextContent
from tinyagent.notebook._conversation import Conversation
from tinyagent.notebook._interrupt import (
    agent_cell_transformer,
    install_transformer,
    uninstall_transformer,
)
from tinyagent.notebook._session import first_code_block, interpolate

SECRET = "sk-or-v1-THIS-IS-A-SECRET-0123456789"


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> InteractiveShell:
    return fresh_shell(monkeypatch, tmp_path)


@pytest.fixture
def transformer(shell: InteractiveShell) -> Any:
    """The kernel's production path in the bare shell: %%agent cells become a top-level await."""
    install_transformer(shell)
    yield shell
    uninstall_transformer(shell)


def test_cell_magic_renders_one_final_output_and_sets_agent_last(shell: InteractiveShell) -> None:
    use_script(shell, [Step(text="Bonjour **Ada**")])
    with capture_output() as captured:
        result = shell.run_cell_magic("agent", "--agent bot", "Say hi")
    assert result is None
    assert len(captured.outputs) == 1
    bundle = captured.outputs[0].data
    assert (
        "Bonjour **Ada**" in bundle["text/plain"] and "<strong>Ada</strong>" in bundle["text/html"]
    )
    assert shell.user_ns["_agent_last"].content[0].text == "Bonjour **Ada**"


def test_transformer_turns_the_cell_into_a_top_level_await() -> None:
    lines = ["%%agent -m x --out ans\n", "Hello {who}\n", "line 2\n"]
    [code] = agent_cell_transformer(lines)
    assert code.startswith("await __import__('tinyagent.notebook._magics'")
    assert "'-m x --out ans'" in code and "'Hello {who}\\nline 2\\n'" in code
    assert agent_cell_transformer(["%%agent?\n"]) == ["%%agent?\n"]
    assert agent_cell_transformer(["%%agents\n", "x"]) == ["%%agents\n", "x"]
    assert agent_cell_transformer(["print(1)\n"]) == ["print(1)\n"]


def test_run_cell_goes_through_the_transformer_and_keeps_multi_turn_memory(
    transformer: InteractiveShell,
) -> None:
    shell = transformer
    stream = use_script(shell, [Step(text="First answer."), Step(text="Second answer.")])
    shell.user_ns["who"] = "Grace"
    with capture_output() as captured:
        first = shell.run_cell("%%agent --agent bot\nHello {who}")
        second = shell.run_cell("%%agent --agent bot\nAnd again?")
    assert first.success and second.success and first.result is None
    assert len(captured.outputs) == 2
    texts = [[getattr(m, "role", "") for m in call.messages] for call in stream.calls]
    assert texts == [["user"], ["user", "assistant", "user"]]
    assert stream.calls[0].messages[0].content[0].text == "Hello Grace"


def test_the_magic_line_expands_variables_on_both_paths(shell: InteractiveShell) -> None:
    stream = use_script(shell, [Step(text="a"), Step(text="b")])
    shell.user_ns.update(which="bot", cap=5)
    with capture_output():
        assert shell.run_cell("%%agent --agent {which} --max-tokens $cap\nhi").success
        install_transformer(shell)
        try:
            assert shell.run_cell("%%agent --agent {which} --max-tokens $cap\nagain").success
        finally:
            uninstall_transformer(shell)
    assert len(stream.calls) == 2


def test_default_conversation_is_per_kernel_and_named_ones_are_separate(
    shell: InteractiveShell,
) -> None:
    session = session_of(shell)
    agent, stream = scripted_agent([Step(text="a1"), Step(text="a2")])
    other, other_stream = scripted_agent([Step(text="b1")])
    session.conversations["default"]._agent = agent
    session.conversations["side"] = Conversation("side", other)
    for conv in session.conversations.values():
        conv.sticky.update(provider="local", base_url="http://127.0.0.1:9/v1/chat/completions")
    with capture_output():
        shell.run_cell_magic("agent", "", "one")
        shell.run_cell_magic("agent", "--name side", "elsewhere")
        shell.run_cell_magic("agent", "", "two")
    assert len(stream.calls[1].messages) == 3 and len(other_stream.calls[0].messages) == 1
    assert agent.state.model.provider == "local" and agent.state.model.id == "moonshotai/kimi-k2.5"


def test_new_out_quiet_and_no_stream(shell: InteractiveShell) -> None:
    stream = use_script(shell, [Step(text="one"), Step(text="two")])
    with capture_output() as captured:
        shell.run_cell_magic("agent", "--agent bot --quiet -o ans", "first")
        shell.run_cell_magic("agent", "--agent bot --new --no-stream", "fresh")
    assert len(captured.outputs) == 1, "--quiet renders nothing"
    assert shell.user_ns["ans"].content[0].text == "one"
    assert [m.role for m in stream.calls[1].messages] == ["user"], "--new starts over"


def test_format_code_puts_the_code_block_into_the_next_cell(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_script(shell, [Step(text="Here:\n\n```python\nprint('hi')\n```\n")])
    seen: list[str] = []
    monkeypatch.setattr(shell, "set_next_input", lambda text, replace=False: seen.append(text))
    with capture_output():
        shell.run_cell_magic("agent", "--agent bot --format code", "code please")
    assert seen == ["print('hi')"]
    assert first_code_block("no code") is None


def test_agent_var_options_hold_for_one_run_and_are_restored(shell: InteractiveShell) -> None:
    use_script(shell, [Step(text="x"), Step(text="y")])
    agent = shell.user_ns["bot"]
    agent.temperature = 0.5
    seen: list[Any] = []
    original = agent.stream_fn

    async def spy(model: Any, context: Any, options: Any) -> Any:
        seen.append((options.temperature, options.max_tokens, model.id, context.system_prompt))
        return await original(model, context, options)

    agent.stream_fn = spy
    with capture_output():
        shell.run_cell_magic(
            "agent",
            "--agent bot --temperature 0.1 --max-tokens 7 -m other --provider local -s terse",
            "go",
        )
        shell.run_cell_magic("agent", "--agent bot", "again")
    assert seen[0] == (0.1, 7, "other", "terse")
    assert seen[1] == (0.5, None, "fake", "")
    assert agent.temperature == 0.5


def test_sticky_options_hold_for_later_cells(shell: InteractiveShell) -> None:
    session = session_of(shell)
    agent, stream = scripted_agent([Step(text="1"), Step(text="2")])
    session.conversations["default"]._agent = agent
    with capture_output():
        shell.run_cell_magic(
            "agent",
            "--provider local -m m1 -s 'Be brief.' --base-url http://127.0.0.1:9/v1/chat/completions",
            "a",
        )
        shell.run_cell_magic("agent", "", "b")
    assert agent.state.model.id == "m1" and agent.state.system_prompt == "Be brief."


def test_tools_from_namespace_functions_and_agent_tools(shell: InteractiveShell) -> None:
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    async def shout(
        tool_call_id: str, args: dict[str, Any], signal: Any, on_update: Any
    ) -> AgentToolResult:
        return AgentToolResult(content=[TextContent(text=args["text"].upper())])

    loud = AgentTool(
        name="shout",
        description="upper-case",
        parameters={"type": "object", "properties": {"text": {"type": "string"}}},
        execute=shout,
    )
    shell.user_ns.update(add=add, loud=loud)
    use_script(
        shell,
        [
            Step(tool_calls=[("c1", "add", {"a": 2, "b": 40}), ("c2", "shout", {"text": "hey"})]),
            Step(text="42 and HEY"),
        ],
    )
    with capture_output() as captured:
        shell.run_cell_magic("agent", "--agent bot -t add,loud", "use tools")
    plain = captured.outputs[0].data["text/plain"]
    assert '[tool add({"a": 2, "b": 40}) -> done] 42.0' in plain
    assert "[tool shout" in plain and "HEY" in plain
    with pytest.raises(UsageError, match="'nope' is not defined"):
        shell.run_cell_magic("agent", "--agent bot -t nope", "x")


def test_confirm_denial_reaches_the_model_as_an_error_result(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []

    def add(a: float, b: float) -> float:
        calls.append(a)
        return a + b

    shell.user_ns["add"] = add
    stream = use_script(
        shell, [Step(tool_calls=[("c1", "add", {"a": 1, "b": 2})]), Step(text="ok")]
    )
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    with capture_output():
        shell.run_cell_magic("agent", "--agent bot -t add --confirm", "add")
    assert calls == []
    result = stream.calls[1].messages[-1]
    assert result.is_error and result.content[0].text == "Tool call denied by the user"


def test_interpolation_rules() -> None:
    class Obj:
        name = "inner"

        class child:
            value = 3

    ns = {"x": 5, "obj": Obj(), "items": [1, 2]}
    assert interpolate("{x} {obj.name} {obj.child.value}", ns) == "5 inner 3"
    assert interpolate("{{x}} {{literal}}", ns) == "{x} {literal}"
    assert (
        interpolate("{items[0]} {len(items)} {x + 1} {unknown} {obj.missing}", ns)
        == "{items[0]} {len(items)} {x + 1} {unknown} {obj.missing}"
    )
    assert interpolate("{ x }", ns) == "{ x }"


def test_no_interpolate_leaves_the_body_alone(shell: InteractiveShell) -> None:
    stream = use_script(shell, [Step(text="ok")])
    shell.user_ns["x"] = 1
    with capture_output():
        shell.run_cell_magic("agent", "--agent bot --no-interpolate", "{x} {{y}}")
    assert stream.calls[0].messages[0].content[0].text == "{x} {{y}}"


def test_bg_returns_a_handle_and_steer_stop_work(shell: InteractiveShell) -> None:
    # Both runs stream slowly, so stop() always lands mid-stream however loaded the machine is.
    slow = Step(text="word " * 200, chunk=5, delay=0.01)
    stream = use_script(shell, [slow, slow])
    with capture_output():
        handle = shell.run_cell_magic("agent", "--agent bot --bg --quiet", "long")
    assert repr(handle).startswith("AgentRun('bot'")
    assert not handle.done
    assert handle.conversation.running()
    handle.stop()  # possibly before the Agent's run started: then it stops at its start
    handle.wait_sync(3)
    assert handle.done and handle.result.stop_reason == "aborted"
    stream.responses.clear()
    with capture_output():
        handle = shell.run_cell_magic("agent", "--agent bot --bg --quiet", "long again")
    deadline = time.monotonic() + 3
    while not stream.responses and time.monotonic() < deadline:
        time.sleep(0.01)
    handle.stop()
    assert handle.wait_sync(3).stop_reason == "aborted"
    assert stream.responses[0].closed, "the stream was closed on stop"


def test_steer_and_stop_subcommands_on_a_background_run(shell: InteractiveShell) -> None:
    session = session_of(shell)
    agent, stream = scripted_agent(
        [Step(text="word " * 300, chunk=5, delay=0.005), Step(text="steered reply")]
    )
    session.conversations["default"]._agent = agent
    session.conversations["default"].sticky.update(
        provider="local", base_url="http://127.0.0.1:9/v1/chat/completions"
    )
    with capture_output():
        handle = shell.run_cell_magic("agent", "--bg --quiet", "long one")
        time.sleep(0.05)
        shell.run_line_magic("agent", "steer please wrap up")
    handle.wait_sync(5)
    assert [m.role for m in agent.state.messages] == ["user", "assistant", "user", "assistant"]
    assert agent.state.messages[2].content[0].text == "please wrap up"
    stream.steps.append(Step(text="w " * 400, delay=0.005))
    with capture_output() as captured:
        handle = shell.run_cell_magic("agent", "--bg --quiet", "again")
        time.sleep(0.05)
        shell.run_line_magic("agent", "stop")
    handle.wait_sync(3)
    assert handle.result.stop_reason == "aborted" and "Stopping" in captured.stdout


def test_keyboard_interrupt_during_a_sync_run_stops_it_and_the_next_cell_works(
    shell: InteractiveShell,
) -> None:
    stream = use_script(
        shell, [Step(text="slow " * 400, chunk=5, delay=0.01), Step(text="next works")]
    )
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with capture_output() as captured:
        shell.run_cell_magic("agent", "--agent bot", "go slowly")
    assert time.monotonic() - started < 3
    assert "[stopped]" in captured.outputs[0].data["text/plain"]
    agent = shell.user_ns["bot"]
    assert agent.state.messages[-1].stop_reason == "aborted"
    assert stream.responses[0].closed
    with capture_output() as captured:
        shell.run_cell_magic("agent", "--agent bot", "again")
    assert "next works" in captured.outputs[0].data["text/plain"]


def test_a_stop_before_the_run_starts_takes_effect_at_its_start() -> None:
    import asyncio

    from tinyagent.notebook._conversation import AgentRun, Conversation, RunSpec, execute
    from tinyagent.notebook._document import RunDocument
    from tinyagent.notebook._render import QuietRenderer

    agent, stream = scripted_agent([Step(text="never sent")])
    run = AgentRun(Conversation("early", agent, external=True), QuietRenderer(RunDocument()))
    run.stop()
    result = asyncio.run(execute(run.conversation, RunSpec(prompt="hi"), run))
    assert result is not None and result.stop_reason == "aborted"
    assert stream.calls == [], "no request is made for a run stopped before it started"


def test_record_then_replay_a_cell_through_a_cassette(
    shell: InteractiveShell, tmp_path: Any
) -> None:
    from tinyagent.testing import ModelServer, Reply, ScriptedBrain

    cassette = tmp_path / "cell.jsonl"
    with ModelServer(ScriptedBrain([Reply(text="Recorded answer.")])) as upstream:
        route = f"--provider local --base-url {upstream.url}"
        with capture_output() as captured:
            shell.run_cell_magic(
                "agent", f"--name rec {route} --record {cassette}", "Same question"
            )
        assert "Recorded answer." in captured.outputs[0].data["text/plain"]
        assert len(upstream.requests) == 1
    assert cassette.read_text().strip()
    with capture_output() as captured:
        shell.run_cell_magic(
            "agent", f"--name rep --provider local --replay {cassette}", "Same question"
        )
    assert "Recorded answer." in captured.outputs[0].data["text/plain"]
    with pytest.raises(UsageError, match="no cassette"):
        shell.run_cell_magic("agent", f"--replay {tmp_path / 'missing.jsonl'}", "x")


def test_cache_flags_hold_for_one_cell(shell: InteractiveShell) -> None:
    use_script(shell, [Step(text="a"), Step(text="b"), Step(text="c")])
    agent = shell.user_ns["bot"]
    agent.enable_prompt_caching = True
    seen: list[bool] = []
    original = agent.stream_fn

    async def spy(model: Any, context: Any, options: Any) -> Any:
        # what reaches the provider: a cache marker on the prompt's last block, or none
        seen.append(context.messages[-1].content[-1].cache_control is not None)
        return await original(model, context, options)

    agent.stream_fn = spy
    with capture_output():
        shell.run_cell_magic("agent", "--agent bot --no-cache", "one")
        shell.run_cell_magic("agent", "--agent bot", "two")
        agent.enable_prompt_caching = False
        shell.run_cell_magic("agent", "--agent bot --cache", "three")
    assert seen == [False, True, True]
    assert agent.enable_prompt_caching is False
    session = session_of(shell)
    assert session.conversations["default"].agent.enable_prompt_caching is True, "on by default"


def test_a_failed_run_is_a_banner_in_the_cell_not_a_second_copy_on_stderr(
    shell: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    use_script(shell, [Step(text="partial", error="HTTP 500: upstream exploded")])
    with caplog.at_level("ERROR", logger="tinyagent"), capture_output() as captured:
        shell.run_cell_magic("agent", "--agent bot", "go")
    assert "HTTP 500: upstream exploded" in outputs_text(captured)
    assert [r for r in caplog.records if r.name == "tinyagent"] == []
    assert shell.user_ns["_agent_last"].stop_reason == "error"
