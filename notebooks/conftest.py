"""pytest --nbval on the tutorials: say how to fix stale outputs when a comparison fails, and
skip the cells that need an optional extra which is not installed.

The committed outputs are produced by ``scripts/build_notebooks.py``; when the notebook layer's
rendering changes on purpose, the fix is a rebuild, never a hand edit of the .ipynb.

A code cell tagged ``needs-ray`` (tutorial 13's Ray cell) runs only where ``ray`` is importable;
elsewhere its nbval item (``notebooks/13_batch_runs.ipynb::Cell N``) is skipped with the install
hint, and the cells after it still run (they must not depend on it).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

#: cell tag -> (module that must be importable, why the cell is skipped without it)
NEEDS = {
    "needs-ray": ("ray", "needs Ray, not installed here: pip install 'tiny-agent-os[ray]'"),
}

_HINT = (
    "A tutorial's output differs from the committed one. If the change is intended (e.g. the "
    "renderer changed), rebuild the outputs with `python scripts/build_notebooks.py`, review "
    "`git diff notebooks/` and commit; never edit the .ipynb by hand."
)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    failed = terminalreporter.stats.get("failed", [])
    if any(".ipynb::" in getattr(report, "nodeid", "") for report in failed):
        terminalreporter.write_sep("-", "tinyagent tutorials")
        terminalreporter.write_line(_HINT)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    for item in items:
        cell = getattr(item, "cell", None)  # nbval's IPyNbCell items carry their cell
        if cell is None:
            continue
        for tag in cell.get("metadata", {}).get("tags", []):
            need = NEEDS.get(tag)
            if need is not None and importlib.util.find_spec(need[0]) is None:
                item.add_marker(pytest.mark.skip(reason=f"{item.name}: {need[1]}"))
