"""Build the tutorials: ``notebooks/src/*.py`` → ``notebooks/*.ipynb`` with outputs.

This is the ONLY way committed notebook outputs are produced (docs/notebook.md#tutorials). Every
tutorial is generated from its percent-format source, executed top to bottom with nbclient in the
final render mode (``TINYAGENT_RENDER=final``) on the offline demo model, and written back with its
outputs. Outputs saved from a live front end are never committed, because live output differs from
what ``pytest --nbval`` produces.

The kernel gets a clean environment: no API keys, no ``TINYAGENT_LIVE``, no cassette switch and no
Jupyter session markers, so a developer's shell can never change what the tutorials show.

    python scripts/build_notebooks.py              # all tutorials
    python scripts/build_notebooks.py 02 quick     # those whose file name contains 02 or quick

Source format (jupytext "percent" style): ``# %% [markdown]`` starts a Markdown cell whose lines
are ``# ``-prefixed, ``# %%`` starts a code cell, and ``# %% tags=["nbval-ignore-output"]`` adds
cell tags.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
CELL_TIMEOUT = 60  # seconds; each tutorial runs in well under a minute in total
#: A cell tagged ``needs-ray`` starts a local Ray (15-30 s on a loaded 2-core machine, up to 3
#: tries): building tutorial 13 needs Ray installed (pip install -e '.[ray]').
RAY_CELL_TIMEOUT = 300

_CELL_MARK = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")
#: Variables that could switch a tutorial to a real provider, a cassette or live rendering.
_SCRUBBED_PREFIXES = ("TINYAGENT_", "JPY_SESSION", "COLAB_", "PYDEVD_IPYTHON")
_SCRUBBED_SUFFIXES = ("_API_KEY", "_OAUTH_TOKEN", "_AUTH_TOKEN")


def parse_source(text: str) -> list[nbformat.NotebookNode]:
    """Cells of a percent-format source."""
    cells: list[nbformat.NotebookNode] = []
    kind, tags, lines = None, [], []  # type: ignore[var-annotated]

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.split("\n")
            )
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        match = _CELL_MARK.match(line)
        if match:
            flush()
            kind = "markdown" if match.group("md") else "code"
            tags = json.loads(match.group("tags")) if match.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def kernel_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SCRUBBED_PREFIXES) and not k.endswith(_SCRUBBED_SUFFIXES)
    }
    env["TINYAGENT_RENDER"] = "final"
    return env


def cell_timeout(cell: nbformat.NotebookNode) -> int:
    tags = cell.get("metadata", {}).get("tags", [])
    return RAY_CELL_TIMEOUT if "needs-ray" in tags else CELL_TIMEOUT


def build(source: Path) -> tuple[Path, float]:
    nb = nbformat.v4.new_notebook()
    nb.cells = parse_source(source.read_text(encoding="utf-8"))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    # stable cell ids keep diffs small when a tutorial is rebuilt
    for number, cell in enumerate(nb.cells):
        cell["id"] = f"{source.stem[:2]}-{number:02d}"
    # nbclient passes os.environ to the kernel it launches
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(kernel_env())
    started = time.monotonic()
    try:
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            timeout_func=cell_timeout,
            kernel_name="python3",
            record_timing=False,
            # widget state would embed the widget's whole ESM/CSS and fresh random model ids in
            # every build; the static rendering is what a saved notebook relies on
            store_widget_state=False,
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    elapsed = time.monotonic() - started
    target = NOTEBOOKS / f"{source.stem}.ipynb"
    nbformat.validate(nb)
    target.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return target, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("only", nargs="*", help="build only sources whose name contains these")
    args = parser.parse_args(argv)
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if args.only:
        sources = [s for s in sources if any(part in s.name for part in args.only)]
    if not sources:
        print("no tutorial sources matched", file=sys.stderr)
        return 1
    for source in sources:
        target, elapsed = build(source)
        print(f"built {target.relative_to(ROOT)} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
