"""pytest --nbval on the tutorials: say how to fix stale outputs when a comparison fails.

The committed outputs are produced by ``scripts/build_notebooks.py``; when the notebook layer's
rendering changes on purpose, the fix is a rebuild, never a hand edit of the .ipynb.
"""

from __future__ import annotations

from typing import Any

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
