#!/usr/bin/env python3
"""Run the shared harness (``../shared/bench/run_bench.py``) with this project's drivers too.

``run_bench.py`` finds drivers only in its own ``drivers/`` folder. This wrapper points it at a
temporary folder of symbolic links to the shared drivers plus ``bench/drivers/*.py``, then runs
it unchanged, so every option of ``run_bench.py`` works::

    python3 bench/run_provider_bench.py --reps 5 --scenarios tokens,short,tools,paced \\
        --drivers raw,project_batch

Set ``TINYAGENT_SHARED_BENCH`` when the harness is not at ``../shared/bench``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TINYAGENT_SHARED_BENCH", REPO.parent / "shared" / "bench"))
OURS = REPO / "bench" / "drivers"


def linked_drivers(folder: Path) -> None:
    """Links every shared driver and ours into ``folder`` (ours win on a name clash)."""
    for source in [*sorted((SHARED / "drivers").glob("*.py")), *sorted(OURS.glob("*.py"))]:
        target = folder / source.name
        target.unlink(missing_ok=True)
        target.symlink_to(source)


def main() -> None:
    if not (SHARED / "run_bench.py").exists():
        raise SystemExit(f"shared harness not found at {SHARED} (set TINYAGENT_SHARED_BENCH)")
    sys.path.insert(0, str(SHARED))
    import run_bench  # the shared runner, used as is

    folder = Path(tempfile.mkdtemp(prefix="tinyagent-bench-drivers-"))
    try:
        linked_drivers(folder)
        run_bench.DRIVERS_DIR = str(folder)
        run_bench.main()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
