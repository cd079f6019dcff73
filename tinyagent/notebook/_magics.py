"""``%%agent`` (cell) and ``%agent`` (line subcommands): thin methods over the shell's session.

The magics parse their arguments (``magic_arguments`` is the help source) and call the
:class:`~tinyagent.notebook._session.NotebookSession` of their shell, which holds every piece of
state. See docs/notebook.md#cell-magic, docs/notebook.md#subcommands and docs/notebook.md#session.
"""

from __future__ import annotations

import argparse
import re
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Unicode, observe

from ._session import TRAIT_KEYS, NotebookSession, session_for
from ._subcommands import run_subcommand

SUBCOMMANDS_HELP = """
Line subcommands (``%agent <subcommand>``; add ``--name NAME`` for a named conversation):

  config [key=value ...]   show the resolved settings and key source / set session settings
  reset                    forget the conversation (keeps model, system prompt and tools)
  history                  the transcript, rendered
  tools                    the tools of the conversation
  usage                    tokens per turn and in total, cache read/write, cost
  export PATH              save the transcript (.md or .json)
  load PATH                rebuild a conversation from an exported transcript
  doctor                   versions, extension, endpoint, key source, front end, render mode
  demo                     start the offline demo model and point the default conversation at it
  fix [options]            explain the last exception and propose a corrected cell (takes the
                           %%agent options, e.g. --kernel to let the model test its fix)
  stop                     abort the running (background) run
  steer TEXT               queue a steering message into the running run
  followup TEXT            queue a follow-up message into the running run
"""


#: ``$`` before a digit: a dollar amount, never a variable (``var_expand`` reads ``$$`` as ``$``)
_DOLLAR_AMOUNT = re.compile(r"\$(?=\.?\d)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int of 1 or more, got {text!r}")
    return value


def _budget(text: str) -> int | float:
    """``--budget``: ``20000`` is tokens; ``0.50``, ``$2`` (or ``$$2``, IPython's escape) is US
    dollars."""
    value = text.strip().replace(",", "").replace("_", "")
    try:
        if "$" in value or "." in value:
            number: int | float = float(value.strip("$"))
        else:
            number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: an int is tokens (--budget 20000), a number with a dot or $ is US "
            "dollars (--budget 0.50, --budget $2)"
        )
    return number


@magics_class
class AgentMagics(Magics):
    """The ``%agent``/``%%agent`` magics. Traitlets settings sit below ``%agent config``."""

    model = Unicode(None, allow_none=True, help="Default model id").tag(config=True)
    provider = Unicode(
        None, allow_none=True, help="Default provider (openrouter, openai, ...)"
    ).tag(config=True)
    base_url = Unicode(
        None, allow_none=True, help="chat-completions URL, or an API base ending in /v1"
    ).tag(config=True)
    system = Unicode(None, allow_none=True, help="Default system prompt").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        # values from ipython_config.py were loaded above, possibly before a session existed
        session = session_for(shell) if shell is not None else None
        if session is not None:
            session.traits.update({key: getattr(self, key) for key in TRAIT_KEYS})

    @observe(*TRAIT_KEYS)
    def _push_trait(self, change: Any) -> None:
        # %config AgentMagics.model = ... sets the trait; the session's traitlets layer follows
        session = session_for(self.shell) if self.shell is not None else None
        if session is not None:
            session.traits[change["name"]] = change["new"]

    @property
    def session(self) -> NotebookSession:
        """The session of the shell these magics are registered with."""
        session = session_for(self.shell) if self.shell is not None else None
        if session is None:
            raise UsageError(
                "the tinyagent.notebook extension is not loaded: run %load_ext tinyagent.notebook"
            )
        return session

    def parse(self, line: str) -> argparse.Namespace:
        try:
            # POSIX splitting, so -s "a b" and -s 'a b' both lose their quotes
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%%agent: {exc}") from None
        args: argparse.Namespace = self.agent.parser.parse_args(argv)
        return args

    # -- the magic ---------------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="model id (sticky)")
    @argument("--provider", help="provider, e.g. openrouter, openai, minimax (sticky)")
    @argument("--base-url", help="chat-completions URL, or an API base ending in /v1 (sticky)")
    @argument("-s", "--system", help="system prompt (sticky)")
    @argument(
        "-t",
        "--tools",
        help="comma-separated names of AgentTool objects or functions in the namespace (sticky)",
    )
    @argument("--name", help="use/create a named conversation instead of the default one")
    @argument("--agent", help="drive an existing Agent object from the namespace")
    @argument("--new", action="store_true", help="start a fresh conversation (same configuration)")
    @argument("--temperature", type=float, help="sampling temperature (this cell)")
    @argument("--max-tokens", type=int, help="output token cap (this cell)")
    @argument(
        "--cache",
        dest="cache",
        nargs="?",
        const=True,
        default=None,
        metavar="PATH",
        help="prompt caching on (this cell); with --map, PATH is the resume cache (SQLite)",
    )
    @argument(
        "--no-cache", dest="cache", action="store_false", help="prompt caching off (this cell)"
    )
    @argument("--confirm", action="store_true", help="ask before every tool call")
    @argument(
        "-k",
        "--kernel",
        action="store_true",
        help="let the model use the kernel: list_variables, inspect_variable, run_python",
    )
    @argument(
        "-y",
        "--yes",
        action="store_true",
        help="with --kernel: run_python runs code without asking first",
    )
    @argument("-o", "--out", help="store the final assistant message in this variable")
    @argument(
        "--format",
        choices=("markdown", "text", "code"),
        default="markdown",
        help="how the answer renders; code also puts its code block into a new cell",
    )
    @argument(
        "--code",
        action="store_true",
        help="ask for code only; the answer's code block goes into a new cell below",
    )
    @argument("--no-stream", action="store_true", help="render once at the end")
    @argument("--quiet", action="store_true", help="no rendering (history and --out still kept)")
    @argument("--bg", action="store_true", help="start the run and return a handle at once")
    @argument("--no-interpolate", action="store_true", help="leave {name} placeholders as written")
    @argument(
        "--replay", metavar="PATH", help="answer from a recorded cassette (no network, no key)"
    )
    @argument(
        "--map",
        metavar="VAR",
        help="run the body, a str.format template, once per row of VAR (a DataFrame, a list of "
        "dicts or of strings) as a batch; -o stores the result as a DataFrame",
    )
    @argument("--concurrency", type=_positive_int, metavar="N", help="with --map: rows in flight")
    @argument(
        "--budget",
        type=_budget,
        metavar="X",
        help="with --map: no row starts once spent; an int is tokens, 0.50 or $2 is US dollars",
    )
    @argument(
        "--record", metavar="PATH", help="forward to the real provider and record into a cassette"
    )
    @line_cell_magic
    def agent(self, line: str, cell: str | None = None) -> Any:
        """Talk to an LLM agent: the cell body is the prompt.

        Consecutive ``%%agent`` cells continue one conversation per kernel (multi-turn memory)
        until ``%agent reset``. ``{name}`` and ``{name.attr}`` in the body are replaced by the
        value from the namespace (``{{``/``}}`` for literal braces). The final message is kept
        in ``_agent_last``.
        """
        if cell is None:
            fix = _fix_options(line)
            if fix is None:
                return run_subcommand(self.session, line)
            prepared = self.session.prepare_fix(self.parse(fix))
        else:
            args = self.parse(line)
            if args.map is not None:
                batch = self.session.prepare_map(args, cell)
                if batch is not None:
                    self.session.run_map_blocking(batch)
                return None
            prepared = self.session.prepare(args, cell)
        session = self.session
        if prepared is None:
            return None
        if prepared.background:
            return session.start_background(prepared)
        session.run_blocking(prepared)
        return None

    async def run_cell_async(self, line: str, cell: str | None) -> Any:
        """The input-transformer path: awaited on the kernel loop (``cell`` None: the line of a
        ``%agent fix`` cell)."""
        # run_cell_magic expands {var}/$var in the magic line; the transformer path does too
        session = self.session
        # ...but keeps a dollar amount (--budget $2): "$2" would expand to the number 2
        line = session.shell.var_expand(_DOLLAR_AMOUNT.sub("$$", line), depth=1)
        if cell is None:
            prepared = session.prepare_fix(self.parse(_fix_options(line) or ""))
        else:
            args = self.parse(line)
            if args.map is not None:
                batch = session.prepare_map(args, cell)
                if batch is not None:
                    await session.run_map(batch)
                return None
            prepared = session.prepare(args, cell)
        if prepared is None:
            return None
        if prepared.background:
            return session.start_background(prepared)
        await session.run(prepared)
        return None


AgentMagics.agent.__doc__ = (AgentMagics.agent.__doc__ or "") + SUBCOMMANDS_HELP


def _fix_options(line: str) -> str | None:
    """The ``%%agent`` options of a ``%agent fix ...`` line; ``None`` for other subcommands."""
    head, _, rest = line.strip().partition(" ")
    return rest if head == "fix" else None


def run_agent_cell(line: str, cell: str | None) -> Any:
    """Entry point of transformed ``%%agent`` cells (see ``_interrupt``): the running shell's
    magics, found through the shell as IPython finds them."""
    from IPython import get_ipython

    shell = get_ipython()
    owner = getattr(shell.find_cell_magic("agent"), "__self__", None) if shell else None
    if not isinstance(owner, AgentMagics) or session_for(shell) is None:
        raise UsageError(
            "the tinyagent.notebook extension is not loaded: run %load_ext tinyagent.notebook"
        )
    return owner.run_cell_async(line, cell)
