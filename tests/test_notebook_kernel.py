"""A real ipykernel: the input-transformer path on the kernel loop, multi-turn, and SIGINT.

The kernel runs the real stack (Rust streamer → HTTP → SSE) against loopback model servers: the
demo model inside the kernel (``%agent demo``) and a slow scripted server in this process, so
the test can see the connection being closed when the kernel is interrupted mid-stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

from support.real_kernel import click, collect, plain, run_cell, running_kernel, widget_ops  # noqa: E402

from tinyagent.testing import ModelServer, Reply, ScriptedBrain  # noqa: E402


@pytest.fixture(scope="module")
def kernel() -> Iterator[Any]:
    with running_kernel("final") as pair:
        yield pair


@pytest.fixture
def live_kernel() -> Iterator[Any]:
    with running_kernel("live") as pair:
        yield pair

def test_agent_cells_run_on_the_kernel_loop_with_memory_then_survive_an_interrupt(
    kernel: Any,
) -> None:
    manager, client = kernel
    reply, outputs = run_cell(client, "%load_ext tinyagent.notebook\n%agent demo")
    assert reply["status"] == "ok", outputs
    assert "offline demo model" in plain(outputs)

    reply, outputs = run_cell(client, "%%agent\nWhat is the capital of France?")
    assert reply["status"] == "ok", plain(outputs)
    displays = [m for m in outputs if m["msg_type"] == "display_data"]
    assert len(displays) == 1, "final mode: exactly one output per run"
    data = displays[0]["content"]["data"]
    assert "What is the capital of France?" in data["text/plain"]
    assert set(data) == {"text/html", "text/markdown", "text/plain"}
    assert not [
        m
        for m in outputs
        if m["msg_type"] in ("update_display_data", "clear_output", "execute_result")
    ]

    reply, outputs = run_cell(
        client,
        "from tinyagent.notebook._session import session_for\n"
        "conv = session_for().conversations['default']\n"
        "print(conv.current.thread, len(conv.agent.state.messages))",
    )
    assert plain(outputs).split() == ["MainThread", "2"], (
        "the transformer path awaits on the kernel loop"
    )

    reply, outputs = run_cell(client, "%%agent\nAnd a follow-up question")
    assert reply["status"] == "ok"
    reply, outputs = run_cell(
        client,
        "body = session_for().demo_server.requests[-1].body\n"
        "print(sum(1 for m in body['messages'] if m['role'] == 'user'))",
    )
    assert plain(outputs).strip() == "2", "the second cell continued the conversation"

    slow = ScriptedBrain([Reply(text="slow words " * 400, chunk_chars=6, delay=0.02)])
    with ModelServer(slow) as server:
        cell = f"%%agent --name slow --provider local --base-url {server.url}\nTell me a long story"
        msg_id = client.execute(cell)
        server.wait_for_requests(1, timeout=20)
        time.sleep(0.3)  # mid-stream
        interrupted = time.monotonic()
        manager.interrupt_kernel()
        assert server.wait_for_disconnect(timeout=3), "the HTTP stream was closed"
        reply, outputs = collect(client, msg_id, timeout=10)
        assert time.monotonic() - interrupted < 3
    text = plain(outputs)
    assert "[stopped]" in text and "slow words" in text, text
    reply, outputs = run_cell(
        client,
        "last = session_for().conversations['slow'].agent.state.messages[-1]\n"
        "print(last.stop_reason, bool(last.content))",
    )
    assert plain(outputs).split() == ["aborted", "True"], "the partial is kept as aborted"

    reply, outputs = run_cell(client, "%%agent\nStill there?")
    assert reply["status"] == "ok" and "Still there?" in plain(outputs)


def test_run_cell_magic_from_code_streams_live_from_the_worker_loop_and_interrupts(
    live_kernel: Any,
) -> None:
    manager, client = live_kernel
    reply, outputs = run_cell(client, "%load_ext tinyagent.notebook\n%agent demo")
    assert reply["status"] == "ok"
    reply, outputs = run_cell(
        client,
        "get_ipython().run_cell_magic('agent', '', 'Hello from code')\n"
        "from tinyagent.notebook._session import session_for\n"
        "print(session_for().conversations['default'].current.thread)",
    )
    assert reply["status"] == "ok", plain(outputs)
    kinds = [m["msg_type"] for m in outputs]
    # every output of the worker-thread run is attributed to this cell
    assert kinds.count("display_data") == 1 and kinds.count("update_display_data") == 1
    widget = next(m for m in outputs if m["msg_type"] == "display_data")["content"]["data"]
    assert widget["text/plain"] == "AgentView(run)"
    static = next(m for m in outputs if m["msg_type"] == "update_display_data")["content"]["data"]
    assert "Hello from code" in static["text/plain"] and "text/html" in static
    assert plain(outputs).strip().endswith("tinyagent-run")

    slow = ScriptedBrain([Reply(text="slow words " * 400, chunk_chars=6, delay=0.02)])
    with ModelServer(slow) as server:
        magic_line = f"--name slow --provider local --base-url {server.url}"
        msg_id = client.execute(f"get_ipython().run_cell_magic('agent', {magic_line!r}, 'Long')")
        server.wait_for_requests(1, timeout=20)
        time.sleep(0.3)
        manager.interrupt_kernel()
        assert server.wait_for_disconnect(timeout=3), "the HTTP stream was closed"
        reply, outputs = collect(client, msg_id, timeout=10)
    assert reply["status"] == "ok"
    static = next(m for m in outputs if m["msg_type"] == "update_display_data")["content"]["data"]
    assert "[stopped]" in static["text/plain"]
    reply, outputs = run_cell(client, "%%agent\nStill there?")
    assert reply["status"] == "ok"


def test_confirm_buttons_are_answered_mid_run_on_the_kernel_loop(live_kernel: Any) -> None:
    from tinyagent.testing import ToolCallSpec

    manager, client = live_kernel
    reply, outputs = run_cell(
        client,
        "%load_ext tinyagent.notebook\n"
        "ran = []\n"
        "def add(a: float, b: float) -> float:\n"
        "    ran.append((a, b))\n"
        "    return a + b",
    )
    assert reply["status"] == "ok"
    script = ScriptedBrain(
        [Reply(tool_calls=[ToolCallSpec("add", {"a": 2, "b": 40})]), Reply(text="It is 42.")]
    )
    with ModelServer(script) as server:
        msg_id = client.execute(
            f"%%agent --confirm -t add --provider local --base-url {server.url}\nAdd 2 and 40"
        )
        comm_id, ops = widget_ops(client, lambda ops: any("data-confirm=" in o[2] for o in ops))
        question = next(o[2] for o in ops if "data-confirm=" in o[2])
        key = question.split('data-confirm="', 1)[1].split('"', 1)[0]
        click(client, comm_id, event="confirm", id=key, ok=True)
        reply, outputs = collect(client, msg_id, timeout=20)
    assert reply["status"] == "ok"
    static = next(m for m in outputs if m["msg_type"] == "update_display_data")["content"]["data"]
    assert "It is 42." in static["text/plain"] and "-> done] 42" in static["text/plain"]
    reply, outputs = run_cell(client, "print(ran)")
    assert plain(outputs).strip() == "[(2.0, 40.0)]"
