"""``%%agent --map VAR``: one agent over the rows of a namespace variable (docs/batch.md).

The cell's body is a ``str.format`` template over each row (never the namespace). The session
parses and routes the cell as it does a ``%%agent`` cell (:meth:`NotebookSession.routing`); here
the batch is prepared, run on the kernel loop or a worker-thread loop, and its result stored.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ._config import load_dotenv
from ._conversation import AgentRun
from ._interrupt import run_blocking
from ._render import make_renderer

if TYPE_CHECKING:
    from ._session import NotebookSession

_MISSING = object()


@dataclasses.dataclass
class MapCell:
    """A ``%%agent --map`` cell ready to run (``options``: ``arun_batch``'s keywords)."""

    config: Any
    rows: Any
    options: dict[str, Any]
    relay: Any
    args: argparse.Namespace


def prepare_map(session: NotebookSession, args: argparse.Namespace, cell: str) -> MapCell | None:
    """``%%agent --map VAR``: the body is a ``str.format`` template over each row of ``VAR``
    (never the namespace); ``None`` when refused (the missing-key banner is shown)."""
    from tinyagent.batch._progress import make_progress

    from ._batch_progress import StopRelay, check_template, map_config

    for flag in ("bg", "kernel", "yes", "confirm", "code", "replay", "record"):
        if getattr(args, flag):
            raise UsageError(f"--{flag} cannot be combined with --map")
    if args.agent and args.name:
        raise UsageError("--agent and --name cannot be combined")
    rows = session.user_ns.get(args.map, _MISSING)
    if rows is _MISSING:
        raise UsageError(f"--map {args.map}: no such variable in the namespace")
    template = cell.rstrip("\r\n")
    if not template.strip():
        raise UsageError("%%agent --map needs a template in the cell body: Classify: {text}")
    check_template(template, rows, args.map)
    load_dotenv()
    conv = session.conversation(args.name, args.agent)
    tools, overrides, resolved = session.routing(conv, args)
    mode = "quiet" if args.quiet else session.render_mode()
    if resolved is not None:
        missing = resolved.missing_key_message()
        if missing is not None:
            AgentRun(conv, make_renderer(mode)).refuse(missing)
            return None
    config = map_config(conv.agent, args, tools, overrides, resolved)
    options: dict[str, Any] = {"prompt": template, "budget": args.budget}
    if args.concurrency is not None:
        options["concurrency"] = args.concurrency
    if isinstance(args.cache, str):
        options["cache"] = str(Path(args.cache).expanduser())
    relay = StopRelay(None if args.quiet else make_progress(True))
    return MapCell(config, rows, options, relay, args)


async def run_map(session: NotebookSession, cell: MapCell) -> Any:
    """The transformer path: the batch on the kernel loop (Stop or an interrupt: partial)."""
    from tinyagent.batch import arun_batch
    from tinyagent.batch._rows import PromptError

    try:
        result = await arun_batch(cell.config, cell.rows, progress=cell.relay, **cell.options)
    except PromptError as exc:
        raise UsageError(f"%%agent --map {cell.args.map}: {exc}") from None
    return _store(session, cell, result)


def run_map_blocking(session: NotebookSession, cell: MapCell) -> Any:
    """No one can await: the batch on a worker-thread loop, joined; Ctrl-C stops it."""
    stop = cell.relay.stop
    return run_blocking(lambda: run_map(session, cell), on_interrupt=lambda: stop("interrupted"))


def _store(session: NotebookSession, cell: MapCell, result: Any) -> Any:
    from ._batch_progress import BatchSummary

    namespace = session.user_ns
    namespace["_agent_batch"] = result
    if cell.args.out:
        try:
            namespace[cell.args.out] = result.to_pandas()
        except ImportError:  # no pandas: the BatchResult itself
            namespace[cell.args.out] = result
    if not cell.args.quiet:
        from IPython.display import display

        display(BatchSummary(result, cell.args.map))
    return result
