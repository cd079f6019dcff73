"""How fast a notebook run stops: kernel interrupt and the cell widget's Stop.

Targets: docs/notebook.md#interrupt-and-stop and bench/README.md.

A real ipykernel (live render mode, the ``%%agent`` input-transformer path) streams a long answer
from a loopback server in this process. Mid-stream the script either interrupts the kernel
(SIGINT, what the notebook's stop button does) or sends the run widget the exact comm message its
Stop button sends. It measures the time until the server sees the HTTP connection closed, and
until the kernel is idle again with the static "stopped" output in place.

    python bench/notebook_interrupt_bench.py [--trials 10]
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jupyter_client  # noqa: E402

from tinyagent.testing import ModelServer, Reply, ScriptedBrain  # noqa: E402


def wait_idle(
    client: Any, msg_id: str, timeout: float = 30.0
) -> tuple[float, list[dict[str, Any]]]:
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = client.get_iopub_msg(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            raise SystemExit("the kernel did not become idle") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return time.monotonic(), messages


def run_widget_comm(client: Any, deadline: float) -> str:
    """The comm id of the run widget the current cell opened."""
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=0.1)
        except queue.Empty:
            continue
        if msg["msg_type"] == "comm_open":
            state = msg["content"]["data"].get("state", {}).get("state", {})
            if isinstance(state, dict) and state.get("kind") == "run":
                return str(msg["content"]["comm_id"])
    raise SystemExit("no run widget was opened")


def trial(manager: Any, client: Any, server: ModelServer, how: str, n: int) -> tuple[float, float]:
    before = len(server.requests)
    msg_id = client.execute(
        f"%%agent --name {how}{n} --provider local --base-url {server.url}\nGo on"
    )
    comm_id = run_widget_comm(client, time.monotonic() + 20) if how == "stop" else ""
    server.wait_for_requests(before + 1, timeout=20)
    time.sleep(0.4)  # well into the stream
    started = time.monotonic()
    if how == "interrupt":
        manager.interrupt_kernel()
    else:  # exactly what the Stop button sends
        content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "stop"}}}
        client.shell_channel.send(client.session.msg("comm_msg", content))
    if not server.wait_for_disconnect(timeout=10):
        raise SystemExit("the HTTP stream was not closed")
    closed = time.monotonic() - started
    idle, messages = wait_idle(client, msg_id)
    shown = [m for m in messages if m["msg_type"] == "update_display_data"]
    if not shown or "[stopped]" not in shown[-1]["content"]["data"]["text/plain"]:
        raise SystemExit("the cell does not say stopped")
    return closed, idle - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
    env.update(TINYAGENT_RENDER="live", PYTHONPATH=str(REPO))
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(REPO))
    client = manager.client()
    client.start_channels()
    brain = ScriptedBrain(
        [Reply(text="word " * 3000, chunk_chars=5, delay=0.01)], when_exhausted="repeat"
    )
    try:
        client.wait_for_ready(timeout=60)
        wait_idle(client, client.execute("%load_ext tinyagent.notebook"))
        with ModelServer(brain) as server:
            print(f"{'':<22} {'connection closed':>26} {'kernel idle, output stopped':>30}")
            print(f"{'':<22} {'median':>12} {'max':>12} {'median':>14} {'max':>14}")
            for how in ("interrupt", "stop"):
                closed, idle = zip(
                    *(trial(manager, client, server, how, n) for n in range(args.trials)),
                    strict=True,
                )
                label = "kernel interrupt" if how == "interrupt" else "Stop button (comm)"
                print(
                    f"{label:<22} {statistics.median(closed) * 1000:>10.0f}ms {max(closed) * 1000:>10.0f}ms"
                    f" {statistics.median(idle) * 1000:>12.0f}ms {max(idle) * 1000:>12.0f}ms"
                )
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
