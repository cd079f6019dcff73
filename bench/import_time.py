"""How long ``import tinyagent`` takes in a fresh interpreter.

Each trial starts a new ``python -c`` that times the import itself (wall clock and the process's
CPU time, so a loaded machine shows up as wall >> CPU), after the interpreter's own start-up.
Prints the median and the best of N trials, and the modules the import pulls in that a first
``Agent.prompt()`` does not need (httpx and jsonschema should not be among them).

    python bench/import_time.py            # 15 trials
    python bench/import_time.py -n 40 --module tinyagent.notebook
    git worktree add /tmp/before <commit> && python bench/import_time.py --against /tmp/before

``--against DIR`` alternates trials between this tree and another checkout (put first on
``PYTHONPATH``), so both see the same machine load: on a busy 2-core machine absolute figures
swing by several times, the ratio much less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PROBE = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import {module}
t1, c1 = time.perf_counter(), time.process_time()
heavy = sorted(m for m in ("httpx", "jsonschema", "IPython", "ipywidgets", "numpy") if m in sys.modules)
print(json.dumps({{"wall": t1 - t0, "cpu": c1 - c0, "heavy": heavy}}))
"""


def trial(module: str, tree: str | None = None) -> dict[str, object]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (tree, env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tree or _REPO,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def summary(label: str, results: list[dict[str, object]]) -> str:
    walls = [float(r["wall"]) * 1000 for r in results]  # type: ignore[arg-type]
    cpus = [float(r["cpu"]) * 1000 for r in results]  # type: ignore[arg-type]
    return (
        f"{label}: wall median {statistics.median(walls):.0f} ms, best {min(walls):.0f} ms; "
        f"CPU median {statistics.median(cpus):.0f} ms, best {min(cpus):.0f} ms "
        f"({len(results)} fresh interpreters)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=15, help="trials (default 15)")
    parser.add_argument("--module", default="tinyagent", help="module to import")
    parser.add_argument("--against", metavar="DIR", help="another checkout to compare with")
    args = parser.parse_args()
    trial(args.module, _REPO)  # warm the file-system cache and the .pyc files
    ours: list[dict[str, object]] = []
    theirs: list[dict[str, object]] = []
    if args.against:
        trial(args.module, args.against)
    for _ in range(args.n):
        ours.append(trial(args.module, _REPO))
        if args.against:
            theirs.append(trial(args.module, args.against))
    print(summary(f"import {args.module} (this tree)", ours))
    print(f"  heavy modules imported: {ours[-1]['heavy'] or 'none'}")
    if args.against:
        print(summary(f"import {args.module} ({args.against})", theirs))
        print(f"  heavy modules imported: {theirs[-1]['heavy'] or 'none'}")

if __name__ == "__main__":
    main()
