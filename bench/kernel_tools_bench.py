"""The kernel tools in a real ipykernel: output sizes, and how fast an interrupt stops run_python.

Targets: docs/notebook.md#kernel-tools and bench/README.md.

A scripted loopback model in this process asks the kernel's ``%%agent --kernel --yes`` run for
tool calls; the script reads what the model was sent:

* sizes: ``inspect_variable`` of a 1,000,000-row DataFrame, a 200-column one and a 10^7 array,
  ``list_variables`` over 300 variables, and ``run_python`` printing 10 MB;
* interrupt: ``run_python`` runs ``time.sleep(30)``; once the code has started, the kernel is
  interrupted (what the stop button does) and the time until the kernel is idle again, with the
  stopped run rendered, is measured.

    python bench/kernel_tools_bench.py [--trials 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from support.real_kernel import collect, plain, run_cell, running_kernel  # noqa: E402

from tinyagent.testing import ModelServer, Reply, ScriptedBrain, ToolCallSpec  # noqa: E402

SETUP = """\
%load_ext tinyagent.notebook
import numpy as np, pandas as pd
big = pd.DataFrame({"a": np.arange(1_000_000), "b": np.random.default_rng(0).random(1_000_000),
                    "c": np.where(np.arange(1_000_000) % 7, "x", None)})
wide = pd.DataFrame(np.zeros((1000, 200)), columns=[f"col_{i}" for i in range(200)])
arr = np.arange(10_000_000, dtype=float)
for i in range(300):
    globals()[f"v{i}"] = list(range(i))
"""
CALLS = [
    ("inspect_variable", {"name": "big"}),
    ("inspect_variable", {"name": "wide"}),
    ("inspect_variable", {"name": "arr"}),
    ("list_variables", {}),
    ("run_python", {"code": "print('x' * 10_000_000)"}),
]


def sizes(client) -> None:
    brain = ScriptedBrain(
        [Reply(tool_calls=[ToolCallSpec(n, a)]) for n, a in CALLS] + [Reply(text="ok")]
    )
    with ModelServer(brain) as server:
        started = time.monotonic()
        reply, outputs = run_cell(
            client, f"%%agent --kernel --yes --provider local --base-url {server.url}\nGo", 120
        )
        took = time.monotonic() - started
        body = server.requests[-1].body
    assert reply["status"] == "ok", plain(outputs)
    results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
    print(f"tool output sizes (characters; the run took {took:.2f} s):")
    for (name, args), text in zip(CALLS, results, strict=True):
        label = f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"[:60]
        print(f"  {label:60s} {len(text):6d}")


def interrupts(manager, client, trials: int) -> None:
    latencies = []
    for _ in range(trials):
        marker = Path(tempfile.mkdtemp()) / "started"
        code = f"open({str(marker)!r}, 'w').close()\nimport time\ntime.sleep(30)"
        brain = ScriptedBrain([Reply(tool_calls=[ToolCallSpec("run_python", {"code": code})])])
        with ModelServer(brain) as server:
            msg_id = client.execute(
                f"%%agent --kernel --yes --new --provider local --base-url {server.url}\nGo",
                allow_stdin=False,
            )
            while not marker.exists():
                time.sleep(0.005)
            time.sleep(0.2)  # well inside the sleep
            interrupted = time.monotonic()
            manager.interrupt_kernel()
            reply, outputs = collect(client, msg_id, 30)
            latencies.append(time.monotonic() - interrupted)
        assert "[stopped]" in plain(outputs), plain(outputs)
    ms = sorted(1000 * x for x in latencies)
    print(
        f"interrupt during run_python time.sleep(30) -> kernel idle, stopped run shown "
        f"({trials} trials): median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    options = parser.parse_args()
    with running_kernel("final") as (manager, client):
        reply, outputs = run_cell(client, SETUP, 120)
        assert reply["status"] == "ok", plain(outputs)
        sizes(client)
        interrupts(manager, client, options.trials)


if __name__ == "__main__":
    main()
