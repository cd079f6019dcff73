"""``%%agent`` (cell) and ``%agent`` (line subcommands).

See docs/notebook.md#cell-magic and docs/notebook.md#subcommands.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Unicode

from ._config import Resolved, load_dotenv, render_mode
from ._conversation import AgentRun, Conversation, RunSpec, execute
from ._interrupt import run_blocking, running_loop, start_in_worker
from ._render import make_renderer
from ._tools import as_tool

_ACTIVE: AgentMagics | None = None

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
_CODE_BLOCK = re.compile(r"^ {0,3}(```|~~~)[^\n]*\n(.*?)^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
_MISSING = object()

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
  stop                     abort the running (background) run
  steer TEXT               queue a steering message into the running run
  followup TEXT            queue a follow-up message into the running run
"""


def interpolate(text: str, namespace: dict[str, Any]) -> str:
    """Replace ``{name}``/``{name.attr}`` by ``str()`` of the value; nothing is evaluated.

    ``{{``/``}}`` are literal braces; unknown names, missing attributes, indexing, calls and
    expressions stay exactly as written.
    """

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        head, *attrs = match.group(1).split(".")
        value = namespace.get(head, _MISSING)
        for attr in attrs:
            if value is _MISSING:
                break
            try:
                value = getattr(value, attr)
            except Exception:  # noqa: BLE001 - a missing attribute leaves the text alone
                value = _MISSING
        return token if value is _MISSING else str(value)

    return _PLACEHOLDER.sub(substitute, text)


def first_code_block(text: str) -> str | None:
    match = _CODE_BLOCK.search(text)
    return match.group(2).rstrip("\n") if match else None


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
        self.session: dict[str, Any] = {}
        self.conversations: dict[str, Conversation] = {"default": Conversation("default")}
        self.demo_server: Any = None
        self.cassette_servers: dict[tuple[str, str], Any] = {}

    @property
    def ipython(self) -> Any:
        """The shell the magics are registered with (always set once loaded)."""
        if self.shell is None:
            raise UsageError("the tinyagent.notebook magics are not attached to a shell")
        return self.shell

    # -- configuration -----------------------------------------------------------------------

    def config_layers(self) -> list[tuple[str, Mapping[str, Any]]]:
        traits = {
            "model": self.model,
            "provider": self.provider,
            "base_url": self.base_url,
            "system": self.system,
        }
        return [("%agent config", dict(self.session)), ("AgentMagics (traitlets)", traits)]

    def conversation(self, name: str | None = None, agent_var: str | None = None) -> Conversation:
        if agent_var:
            value = self.ipython.user_ns.get(agent_var, _MISSING)
            if value is _MISSING:
                raise UsageError(f"--agent {agent_var}: no such variable in the namespace")
            if not hasattr(value, "prompt") or not hasattr(value, "subscribe"):
                raise UsageError(f"--agent {agent_var}: {type(value).__name__} is not an Agent")
            key = f"agent:{agent_var}:{id(value)}"
            conv = self.conversations.get(key)
            if conv is None or conv.agent is not value:
                conv = Conversation(agent_var, value, external=True)
                self.conversations[key] = conv
            return conv
        key = name or "default"
        if key not in self.conversations:
            self.conversations[key] = Conversation(key)
        return self.conversations[key]

    def resolve_tools(self, names: list[str]) -> list[Any]:
        namespace: dict[str, Any] = self.ipython.user_ns
        tools = []
        for name in names:
            if name not in namespace:
                raise UsageError(f"--tools: '{name}' is not defined in the notebook namespace")
            try:
                tools.append(as_tool(namespace[name], name))
            except (TypeError, ValueError) as exc:
                raise UsageError(f"--tools: {exc}") from None
        return tools

    # -- the magic ---------------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="model id (sticky)")
    @argument("--provider", help="provider, e.g. openrouter, openai, minimax (sticky)")
    @argument(
        "--base-url", help="chat-completions URL, or an API base ending in /v1 (sticky)"
    )
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
        action="store_true",
        default=None,
        help="prompt caching on (this cell)",
    )
    @argument(
        "--no-cache", dest="cache", action="store_false", help="prompt caching off (this cell)"
    )
    @argument("--confirm", action="store_true", help="ask before every tool call")
    @argument("-o", "--out", help="store the final assistant message in this variable")
    @argument(
        "--format",
        choices=("markdown", "text", "code"),
        default="markdown",
        help="how the answer renders; code also puts its code block into a new cell",
    )
    @argument("--no-stream", action="store_true", help="render once at the end")
    @argument("--quiet", action="store_true", help="no rendering (history and --out still kept)")
    @argument("--bg", action="store_true", help="start the run and return a handle at once")
    @argument("--no-interpolate", action="store_true", help="leave {name} placeholders as written")
    @argument(
        "--replay", metavar="PATH", help="answer from a recorded cassette (no network, no key)"
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
            from ._subcommands import run_subcommand

            return run_subcommand(self, line)
        prepared = self.prepare(line, cell)
        if prepared is None:
            return None
        conv, spec, args, run = prepared
        if args.bg:
            loop = running_loop()
            if loop is not None:
                loop.create_task(execute(conv, spec, run))
            else:
                start_in_worker(lambda: execute(conv, spec, run))
            self.ipython.user_ns["_agent_bg"] = run
            return run
        # no one can await here: worker-thread loop, joined; Ctrl-C / interrupt aborts the run
        run_blocking(lambda: execute(conv, spec, run), on_interrupt=run.stop)
        return None

    async def run_cell_async(self, line: str, cell: str) -> Any:
        """The input-transformer path: awaited on the kernel loop."""
        # run_cell_magic expands {var}/$var in the magic line; the transformer path does too
        line = self.ipython.var_expand(line, depth=1)
        prepared = self.prepare(line, cell)
        if prepared is None:
            return None
        conv, spec, args, run = prepared
        if args.bg:
            import asyncio

            asyncio.get_running_loop().create_task(execute(conv, spec, run))
            self.ipython.user_ns["_agent_bg"] = run
            return run
        await execute(conv, spec, run)
        return None

    def prepare(self, line: str, cell: str) -> tuple[Conversation, RunSpec, Any, AgentRun] | None:
        try:
            # POSIX splitting, so -s "a b" and -s 'a b' both lose their quotes
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%%agent: {exc}") from None
        args = self.agent.parser.parse_args(argv)
        if args.agent and args.name:
            raise UsageError("--agent and --name cannot be combined")
        load_dotenv()
        conv = self.conversation(args.name, args.agent)
        if conv.running():
            raise UsageError(
                f"conversation '{conv.name}' is still running; use %agent stop, %agent steer or "
                "%agent followup, or wait for it"
            )
        namespace = self.ipython.user_ns
        body = cell.rstrip("\r\n")  # IPython hands the body over with its final newline
        prompt = body if args.no_interpolate else interpolate(body, namespace)
        if not prompt.strip():
            raise UsageError("%%agent needs a prompt in the cell body")
        sticky = {
            "model": args.model,
            "provider": args.provider,
            "base_url": args.base_url,
            "system": args.system,
        }
        tools = None
        if args.tools is not None:
            names = [n.strip() for n in args.tools.split(",") if n.strip()]
            tools = self.resolve_tools(names)
            if not conv.external:
                conv.tool_names = names
        elif conv.tool_names:
            tools = self.resolve_tools(conv.tool_names)
        if args.new:
            conv.agent.reset()
        overrides: dict[str, str] = {}
        resolved: Resolved | None = None
        if conv.external:
            overrides = {k: v for k, v in sticky.items() if v is not None}
        else:
            conv.update_sticky(**sticky)
            resolved = conv.resolve(self.config_layers(), {})
        if args.replay or args.record:
            resolved = self._through_cassette(conv, args, resolved)
        mode = "quiet" if args.quiet else render_mode(namespace, self.ipython)
        if args.no_stream and mode in ("live", "text"):
            mode = "final"
        holder: dict[str, AgentRun] = {}
        renderer = make_renderer(
            mode,
            format="text" if args.format == "text" else "markdown",
            on_stop=lambda: holder["run"].stop(),
        )
        run = AgentRun(conv, renderer)
        holder["run"] = run
        missing = (
            resolved.missing_key_message() if resolved is not None and not conv.external else None
        )
        if missing is not None:
            run.refuse(missing)
            return None
        spec = RunSpec(
            prompt=prompt,
            resolved=resolved,
            tools=tools,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            cache=args.cache,
            confirm=args.confirm,
            overrides=overrides,
        )
        spec.on_done.append(lambda message: self._store(message, args))
        conv.current = run  # visible to %agent stop/steer before the run's loop picks it up
        return conv, spec, args, run

    def _through_cassette(
        self, conv: Conversation, args: Any, resolved: Resolved | None
    ) -> Resolved:
        """Route this cell's run through a loopback server that replays or records a cassette."""
        if args.replay and args.record:
            raise UsageError("--replay and --record cannot be combined")
        from tinyagent.testing import ModelServer, cassette_brain
        from tinyagent.testing._cassette_switch import CassetteSetting

        base = resolved or conv.resolve(self.config_layers(), {})
        mode, path = ("replay", args.replay) if args.replay else ("record", args.record)
        location = Path(path).expanduser().resolve()
        if mode == "replay" and not location.is_file():
            raise UsageError(f"--replay: no cassette at {path}")
        key = (mode, str(location))
        server = self.cassette_servers.get(key)
        if server is None:
            if mode == "record":
                missing = base.missing_key_message()
                if missing is not None:
                    raise UsageError(f"--record needs the real provider's key. {missing}")
                from tinyagent.alchemy_provider import OpenAICompatModel

                upstream = (
                    base.base_url
                    or OpenAICompatModel(provider=base.provider, id=base.model).base_url
                )
                variable = base.key_variable
                brain = cassette_brain(
                    setting=CassetteSetting("record", location),
                    upstream=upstream,
                    api_key=os.environ.get(variable) if variable else None,  # stays in the brain
                    model=base.model,
                )
            else:
                brain = cassette_brain(setting=CassetteSetting("replay", location))
            server = ModelServer(brain).start()
            self.cassette_servers[key] = server
        return dataclasses.replace(base, provider="cassette", base_url=server.url)

    def _store(self, message: Any, args: Any) -> None:
        if message is None:
            return
        namespace = self.ipython.user_ns
        namespace["_agent_last"] = message
        if args.out:
            namespace[args.out] = message
        if args.format == "code":
            from tinyagent.agent import extract_text

            code = first_code_block(extract_text(message))
            if code is not None:
                self.ipython.set_next_input(code, replace=False)


AgentMagics.agent.__doc__ = (AgentMagics.agent.__doc__ or "") + SUBCOMMANDS_HELP


def run_agent_cell(line: str, cell: str) -> Any:
    """Entry point of transformed ``%%agent`` cells (see ``_interrupt``)."""
    if _ACTIVE is None:
        raise UsageError(
            "the tinyagent.notebook extension is not loaded: run %load_ext tinyagent.notebook"
        )
    return _ACTIVE.run_cell_async(line, cell)
