"""The tutorials' build: sources ↔ committed notebooks, the kernel environment, first cells.

Executing the notebooks is nbval's job (``pytest --nbval notebooks/``); these checks are cheap
and catch what nbval cannot: a notebook edited by hand instead of through its source, a source
never built, and a build environment that would let a developer's key or Jupyter session change
the committed outputs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))


def _load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_notebooks", ROOT / "scripts" / "build_notebooks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_notebooks", module)
    spec.loader.exec_module(module)
    return module


build = _load_build_script()


def test_percent_source_parses_into_cells_with_tags() -> None:
    cells = build.parse_source(
        "# %% [markdown]\n# # Title\n#\n# Some *prose*.\n\n"
        "# %%\nx = 1\n\n"
        '# %% tags=["nbval-ignore-output"]\n%%agent\nHello {x}\n'
    )
    assert [c.cell_type for c in cells] == ["markdown", "code", "code"]
    assert cells[0].source == "# Title\n\nSome *prose*."
    assert cells[1].source == "x = 1"
    assert cells[2].source == "%%agent\nHello {x}"
    assert cells[2].metadata["tags"] == ["nbval-ignore-output"]
    assert "tags" not in cells[1].metadata


def test_kernel_environment_cannot_switch_to_a_real_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-secret")
    monkeypatch.setenv("ANTHROPIC_OAUTH_TOKEN", "token")
    monkeypatch.setenv("TINYAGENT_LIVE", "1")
    monkeypatch.setenv("TINYAGENT_CASSETTE", "record:x.jsonl")
    monkeypatch.setenv("TINYAGENT_RENDER", "live")
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/notebook.ipynb")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release")
    env = build.kernel_env()
    for name in ("OPENROUTER_API_KEY", "ANTHROPIC_OAUTH_TOKEN", "TINYAGENT_LIVE",
                 "TINYAGENT_CASSETTE", "JPY_SESSION_NAME", "COLAB_RELEASE_TAG"):  # fmt: skip
        assert name not in env
    assert env["TINYAGENT_RENDER"] == "final"
    assert env["PATH"] == build.os.environ["PATH"]  # the rest is kept


def test_the_tutorials_are_numbered_without_gaps() -> None:
    assert [s.name[:2] for s in SOURCES] == [f"{n:02d}" for n in range(1, 14)]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_is_built_from_its_source(source: Path) -> None:
    notebook = ROOT / "notebooks" / f"{source.stem}.ipynb"
    assert notebook.exists(), f"{notebook.name} missing: run python scripts/build_notebooks.py"
    committed = nbformat.read(notebook, as_version=4)
    expected = build.parse_source(source.read_text(encoding="utf-8"))
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in expected
    ], f"{notebook.name} differs from {source.name}: rebuild it with scripts/build_notebooks.py"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "built notebooks carry outputs"
    # only a cell tagged raises-exception (nbclient and nbval both honour it) may show an error
    assert not any(
        o.output_type == "error"
        for c in code
        if "raises-exception" not in c.metadata.get("tags", [])
        for o in c.outputs
    )
    assert "widgets" not in committed.metadata


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_first_cell_starts_the_demo_model_and_says_so(source: Path) -> None:
    cells = build.parse_source(source.read_text(encoding="utf-8"))
    first_code = next(c for c in cells if c.cell_type == "code")
    assert "%agent demo" in first_code.source or "ModelServer(" in first_code.source
    notebook = nbformat.read(ROOT / "notebooks" / f"{source.stem}.ipynb", as_version=4)
    first_output = next(c for c in notebook.cells if c.cell_type == "code").outputs
    assert any("demo model" in (o.get("text") or "") for o in first_output)
