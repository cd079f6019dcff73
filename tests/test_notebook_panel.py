"""ChatPanel with a recording comm: send/stop/wait, steering while running, leftovers after Stop."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from support.notebook_fakes import Step, scripted_agent
from support.recording_comm import RecordingComm, install_recording_comms, view_messages

from tinyagent.notebook import ChatPanel
from tinyagent.notebook._session import SESSION_ATTRIBUTE, NotebookSession, session_for


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> list[RecordingComm]:
    return install_recording_comms(monkeypatch.setattr)


def transcript(panel: ChatPanel) -> str:
    return re.sub(r"<[^>]+>", "", "".join(op[2] for op in panel.view.document()))


def click(panel: ChatPanel, **content: Any) -> None:
    """What the front end sends when a button is clicked."""
    panel.view._dispatch(panel.view, content, [])


async def until(predicate: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_send_returns_at_once_and_the_run_is_a_task_on_the_loop(comms: list[RecordingComm]) -> None:
    agent, stream = scripted_agent(
        [Step(text="Hello from the panel.", delay=0.005), Step(text="Second.")]
    )

    async def go() -> None:
        panel = ChatPanel(agent)
        run = panel.send("hi")
        assert run is not None and not run.done and panel.view.state["running"] is True
        await panel.wait()
        assert panel.view.state["running"] is False
        assert "hi" in transcript(panel) and "Hello from the panel." in transcript(panel)
        assert panel.view.state["usage"].startswith("1 turns · in 10")
        click(panel, event="send", text="more")
        await panel.wait()
        assert [m.role for m in agent.state.messages] == ["user", "assistant", "user", "assistant"]
        assert transcript(panel).count("Hello from the panel.") == 1

    asyncio.run(go())
    assert any(kind == "comm_msg" for kind, _s, _d in view_messages(comms))


def test_send_while_running_steers_the_running_agent(comms: list[RecordingComm]) -> None:
    agent, stream = scripted_agent(
        [Step(text="part " * 60, chunk=5, delay=0.005), Step(text="Steered reply.")]
    )

    async def go() -> None:
        panel = ChatPanel(agent)
        panel.send("start")
        await until(lambda: stream.responses)
        panel.send("focus on X")
        assert panel.view.state["queued"] == ["focus on X"]
        await panel.wait()
        assert [m.role for m in agent.state.messages] == ["user", "assistant", "user", "assistant"]
        assert agent.state.messages[2].content[0].text == "focus on X"
        assert panel.view.state["queued"] == [] and panel.queued == []
        assert "steer: focus on X" in transcript(panel)

    asyncio.run(go())


def test_steering_left_after_stop_is_shown_and_cleared_from_the_agent(
    comms: list[RecordingComm],
) -> None:
    agent, stream = scripted_agent(
        [Step(text="long " * 400, chunk=5, delay=0.005), Step(text="fresh run")]
    )

    async def go() -> None:
        panel = ChatPanel(agent)
        panel.send("start")
        await until(lambda: stream.responses)
        panel.send("never delivered")
        click(panel, event="stop")
        await panel.wait()
        assert agent.state.messages[-1].stop_reason == "aborted"
        assert "Stopped. The answer so far is kept" in transcript(panel)
        assert panel.queued == ["never delivered"]
        assert panel.view.state["queued"] == ["never delivered"]
        panel.send("next")
        await panel.wait()
        texts = [m.content[0].text for m in stream.calls[-1].messages if m.role == "user"]
        assert texts == ["start", "next"], "the leftover steering did not leak into the next run"
        stream.steps.append(Step(text="re-sent"))
        click(panel, event="resend", index=0)
        await panel.wait()
        assert stream.calls[-1].messages[-1].content[0].text == "never delivered"
        assert panel.queued == []

    asyncio.run(go())


def test_clear_and_model_selector(comms: list[RecordingComm]) -> None:
    agent, stream = scripted_agent([Step(text="one")])

    async def go() -> None:
        panel = ChatPanel(agent, models=["fake", "bigger"])
        assert panel.view.state["models"] == ["fake", "bigger"]
        panel.send("hello")
        await panel.wait()
        click(panel, event="model", value="bigger")
        assert agent.state.model.id == "bigger" and panel.view.state["model"] == "bigger"
        click(panel, event="clear")
        assert agent.state.messages == [] and panel.view.document() == []

    asyncio.run(go())


def test_bad_settings_and_stable_repr(comms: list[RecordingComm]) -> None:
    agent, _ = scripted_agent([])
    with pytest.raises(TypeError, match="unknown settings"):
        ChatPanel(agent, colour="red")
    panel = ChatPanel(agent)
    assert repr(panel) == "ChatPanel('panel')"
    data = panel._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert data["text/plain"] == "AgentView(panel)"


def test_send_without_a_running_loop_uses_a_worker_loop(comms: list[RecordingComm]) -> None:
    agent, _ = scripted_agent([Step(text="from a plain script")])
    panel = ChatPanel(agent)
    run = panel.send("hello")
    assert run is not None
    result = run.wait_sync(3)
    assert result.content[0].text == "from a plain script"
    assert "from a plain script" in transcript(panel)


def test_the_panel_uses_the_session_of_the_running_shell(
    comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "tinyagent.notebook")
    # a fresh session on the shell, so only what this test sets is in it
    session = NotebookSession(shell)
    monkeypatch.setattr(shell, SESSION_ATTRIBUTE, session)
    assert session_for() is session
    agent, _ = scripted_agent([Step(text="shared with the cells")])
    default = session.conversation()
    default._agent = agent
    default.sticky.update(provider="local", base_url="http://127.0.0.1:9/v1/chat/completions")
    session.settings["model"] = "from-the-session"
    panel = ChatPanel()
    assert panel.conversation is default, "panel and %%agent cells share one conversation"
    assert panel.view.state["model"] == "from-the-session"
    run = panel.send("hi")
    assert run is not None and run.wait_sync(3) is not None
    assert agent.state.model.id == "from-the-session", "the session's settings were resolved"
    assert [m.role for m in default.agent.state.messages] == ["user", "assistant"]
    # without a session on the shell the panel has a conversation of its own
    monkeypatch.delattr(shell, SESSION_ATTRIBUTE)
    assert ChatPanel().conversation.name == "panel"


def test_a_kernel_panel_offers_the_kernel_tools_and_asks_before_code(
    comms: list[RecordingComm],
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns.pop("from_panel", None)
    with pytest.raises(ValueError, match="kernel must be False, True or 'auto'"):
        ChatPanel(kernel="yes")
    steps = [
        Step(tool_calls=[("c1", "run_python", {"code": "from_panel = 1"})]),
        Step(text="Set it."),
    ]

    async def go(kernel: Any, answer: str | None) -> Any:
        agent, stream = scripted_agent(list(steps))
        panel = ChatPanel(agent, kernel=kernel)
        panel.send("set from_panel")
        if answer is not None:
            await until(lambda: "data-choice" in "".join(op[2] for op in panel.view.document()))
            page = "".join(op[2] for op in panel.view.document())
            key = re.search(r'data-confirm="([^"]+)"', page).group(1)
            click(panel, event="confirm", id=key, choice=answer)
        await panel.wait()
        return stream

    stream = asyncio.run(go("auto", None))
    assert [t.name for t in stream.calls[0].tools] == [
        "list_variables",
        "inspect_variable",
        "run_python",
    ]
    assert shell.user_ns.pop("from_panel") == 1, "kernel='auto' runs code without asking"
    stream = asyncio.run(go(True, "skip"))
    assert "from_panel" not in shell.user_ns and stream.calls[1].messages[-1].is_error
    asyncio.run(go(True, "run"))
    assert shell.user_ns["from_panel"] == 1
