"""A real ipykernel for tests: start one with the repository importable, run cells, read the
cell's iopub messages (what a front end would show), click widget buttons."""

from __future__ import annotations

import contextlib
import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jupyter_client

REPO = Path(__file__).resolve().parents[2]


def start_kernel(render: str) -> tuple[Any, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
    env.update(
        TINYAGENT_RENDER=render, PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    )
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(REPO))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
    except RuntimeError:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        raise
    return manager, client


@contextlib.contextmanager
def running_kernel(render: str) -> Iterator[tuple[Any, Any]]:
    """A kernel whose ``%%agent`` cells render in ``render`` mode; shut down afterwards."""
    manager, client = start_kernel(render)
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def run_cell(
    client: Any, code: str, timeout: float = 30.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Execute ``code``; returns the execute_reply content and the cell's iopub messages."""
    msg_id = client.execute(code, allow_stdin=False)  # as nbclient: no one answers input()
    return collect(client, msg_id, timeout)


def collect(
    client: Any, msg_id: str, timeout: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    outputs: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no idle status within {timeout}s") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind in (
            "display_data",
            "execute_result",
            "stream",
            "error",
            "update_display_data",
            "clear_output",
        ):
            outputs.append(msg)
        if kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:  # skip replies to other requests (wait_for_ready's kernel_info ones)
        reply = client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], outputs


def plain(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for msg in outputs:
        content = msg["content"]
        parts.append(content.get("text") or content.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)




def widget_ops(
    client: Any, until: Any, timeout: float = 20.0, comm_id: str = ""
) -> tuple[str, list[Any]]:
    """Read iopub until ``until(ops)`` is true for the ops the run's AgentView received in this
    call (the view opened now, or the one of ``comm_id``); (the view's comm id, the ops)."""
    ops: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            continue
        content = msg["content"]
        if (
            msg["msg_type"] == "comm_open"
            and content["data"]["state"].get("state", {}).get("kind") == "run"
        ):
            comm_id = content["comm_id"]
        if msg["msg_type"] == "comm_msg" and content["comm_id"] == comm_id:
            ops += content["data"].get("content", {}).get("ops", [])
            if until(ops):
                return comm_id, ops
    raise AssertionError(f"the view did not show what was expected within {timeout}s")


def click(client: Any, comm_id: str, **content: Any) -> None:
    """What a click on a view's button sends to the kernel."""
    message = {"comm_id": comm_id, "data": {"method": "custom", "content": content}}
    client.shell_channel.send(client.session.msg("comm_msg", message))
