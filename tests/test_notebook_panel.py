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


# -- Retry, Edit, attachments (on the loopback model server: the request is what a provider gets)


def _png(side: int = 4) -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _server_panel(replies: list[Any]) -> tuple[Any, ChatPanel]:
    from support.batch_support import make_agent

    from tinyagent.testing import ModelServer, ScriptedBrain

    server = ModelServer(ScriptedBrain(replies)).start()
    return server, ChatPanel(make_agent(server.url))


def _user_content(request: Any) -> list[dict[str, Any]]:
    content = request.body["messages"][-1]["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def test_retry_sends_the_same_prompt_again_and_replaces_the_answer(
    comms: list[RecordingComm],
) -> None:
    server, panel = _server_panel(["First answer.", "Second answer."])

    async def go() -> None:
        assert panel.retry() is None and "no message to answer again" in panel.view.state["notice"]
        panel.send("Tell me a fact")
        await panel.wait()
        assert panel.view.state["can_retry"] is True
        click(panel, event="retry")
        await panel.wait()

    try:
        asyncio.run(go())
        first, second = server.requests
    finally:
        server.stop()
    assert _user_content(first) == _user_content(second)  # the same message, sent again
    # the history holds one exchange, not two, and the transcript shows only the new answer
    assert [m.role for m in panel.agent.state.messages] == ["user", "assistant"]
    assert len(second.body["messages"]) == len(first.body["messages"])
    shown = transcript(panel)
    assert "Second answer." in shown and "First answer." not in shown
    assert shown.count("Tell me a fact") == 1


def test_edit_replaces_the_last_message_and_refuses_when_the_conversation_moved_on(
    comms: list[RecordingComm],
) -> None:
    server, panel = _server_panel(["About cats.", "About dogs."])

    async def go() -> None:
        panel.send("Tell me about cats")
        await panel.wait()
        assert panel.edit_last() == "Tell me about cats"
        assert panel.view.state["edit"]["text"] == "Tell me about cats"
        click(panel, event="send", text="Tell me about dogs", replace_last=True)
        await panel.wait()

    try:
        asyncio.run(go())
        second = server.requests[-1]
    finally:
        server.stop()
    assert _user_content(second)[0]["text"] == "Tell me about dogs"
    assert all("cats" not in str(m) for m in second.body["messages"])
    shown = transcript(panel)
    assert "About dogs." in shown and "cats" not in shown
    # something else added to the conversation since: Retry says so and changes nothing
    from tinyagent.agent_types import TextContent, UserMessage

    panel.agent.append_message(UserMessage(content=[TextContent(text="from a cell")]))
    assert panel.retry() is None
    assert "the conversation has moved on" in panel.view.state["notice"]
    assert len(panel.agent.state.messages) == 3


def test_a_pasted_image_reaches_the_model_as_an_image_part(comms: list[RecordingComm]) -> None:
    server, panel = _server_panel(["A red square."])
    data = _png()

    async def go() -> None:
        click(
            panel,
            event="send",
            text="What is this?",
            attachments=[{"type": "image", "mime": "image/png", "data": data, "name": "a.png"}],
        )
        await panel.wait()

    try:
        asyncio.run(go())
        (request,) = server.requests
    finally:
        server.stop()
    parts = _user_content(request)
    assert parts[0] == {"type": "text", "text": "What is this?"}
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{data}"
    # the transcript shows the image in the user's turn
    assert f"data:image/png;base64,{data}" in "".join(op[2] for op in panel.view.document())


def test_a_bad_attachment_is_refused_with_the_reason_and_nothing_is_sent(
    comms: list[RecordingComm],
) -> None:
    server, panel = _server_panel(["never"])
    try:
        click(
            panel,
            event="send",
            text="Read this",
            attachments=[
                {"type": "image", "mime": "application/pdf", "data": "AAAA", "name": "r.pdf"}
            ],
        )
        assert "Not sent: r.pdf: application/pdf cannot be sent" in panel.view.state["notice"]
        assert panel.view.state["edit"]["text"] == "Read this"  # the text goes back to the composer
        click(
            panel,
            event="send",
            text="Read this",
            attachments=[{"type": "image", "mime": "image/png", "data": "%%%", "name": "x.png"}],
        )
        assert "did not arrive intact" in panel.view.state["notice"]
        assert server.requests == [] and panel.agent.state.messages == []
    finally:
        server.stop()


def test_kernel_variables_and_figures_attach_as_summary_text_and_png(
    comms: list[RecordingComm],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()  # what get_ipython() gives the panel
    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    shell.user_ns.update(prices=[3, 1, 4, 1, 5], chart=figure, API_KEY="sk-secret")
    server, panel = _server_panel(["Noted."])
    try:
        click(panel, event="attachables")
        listed = panel.view.state["attachables"]
        assert listed[0] == {"name": "chart", "kind": "figure", "type": "Figure"}
        assert {"name": "prices", "kind": "variable", "type": "list"} in listed
        assert all(item["name"] != "API_KEY" for item in listed)

        async def go() -> None:
            click(
                panel,
                event="send",
                text="Compare",
                attachments=[
                    {"type": "variable", "name": "prices"},
                    {"type": "variable", "name": "chart"},
                ],
            )
            await panel.wait()

        asyncio.run(go())
        (request,) = server.requests
    finally:
        server.stop()
        plt.close(figure)
        for name in ("prices", "chart", "API_KEY"):
            shell.user_ns.pop(name, None)
    parts = _user_content(request)
    assert parts[1]["type"] == "text" and parts[1]["text"].startswith("Variable @prices")
    assert "[3, 1, 4, 1, 5]" in parts[1]["text"]
    assert parts[2]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "@prices" in transcript(panel)  # a chip in the user's turn, not the whole summary
