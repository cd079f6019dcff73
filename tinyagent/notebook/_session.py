"""The notebook state of one IPython shell (docs/notebook.md#session).

A :class:`NotebookSession` holds what ``%%agent`` cells, ``%agent`` subcommands and ``ChatPanel``
share: the conversations, the ``%agent config`` settings, the traitlets values of
``AgentMagics``, the demo model server and the cassette servers. ``load_ipython_extension``
creates one per shell and stores it on the shell, so two shells never share one and nothing lives
in a module global; :func:`session_for` finds it again (for the running shell by default). The
magics only parse their arguments and call the session, as IPython's own magics call the objects
the shell owns.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from tinyagent.agent_types import ImageContent, TextContent, UserMessage, now_ms

from . import _map_cell
from ._config import Resolved, convert_setting, load_dotenv, render_mode
from ._conversation import AgentRun, Conversation, RunSpec, execute
from ._interrupt import run_blocking, running_loop, start_in_worker
from ._kernel_tools import kernel_tools, mentions
from ._render import make_renderer
from ._tools import as_tool

#: where a shell keeps its session (private: reach it through :func:`session_for`)
SESSION_ATTRIBUTE = "_tinyagent_notebook_session"
#: the ``AgentMagics`` traitlets that form the "traitlets" configuration layer
TRAIT_KEYS = ("model", "provider", "base_url", "system")

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
_CODE_BLOCK = re.compile(r"^ {0,3}(```|~~~)[^\n]*\n(.*?)^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
_MISSING = object()
#: the system-prompt addition of ``--code``
CODE_ONLY = (
    "Answer with code only: one fenced Python code block that can be run as a notebook cell, "
    "with comments for anything that needs explaining, and no text outside the block."
)


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
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


def session_for(shell: Any = None) -> NotebookSession | None:
    """The session of ``shell`` (default: the running IPython shell); ``None`` when the extension
    was never loaded there or no shell runs."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            return None
    session = getattr(shell, SESSION_ATTRIBUTE, None)
    return session if isinstance(session, NotebookSession) else None


def open_session(shell: Any) -> tuple[NotebookSession, bool]:
    """The shell's session, created and stored on the shell when it has none; ``True`` when it
    was created now (the caller then registers the magics: once per shell)."""
    session = session_for(shell)
    if session is not None:
        return session, False
    session = NotebookSession(shell)
    setattr(shell, SESSION_ATTRIBUTE, session)
    return session, True


@dataclasses.dataclass
class CellRun:
    """A ``%%agent`` cell ready to run: what :meth:`NotebookSession.prepare` hands back."""

    conversation: Conversation
    spec: RunSpec
    run: AgentRun
    background: bool


class NotebookSession:
    """Conversations, settings and servers of one shell; the magics and the panel call it."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.settings: dict[str, Any] = {}  # %agent config key=value
        self.traits: dict[str, Any] = {}  # AgentMagics traitlets, pushed by the magics
        self.conversations: dict[str, Conversation] = {"default": Conversation("default")}
        self.demo_server: Any = None
        self.cassette_servers: dict[tuple[str, str], Any] = {}

    def __repr__(self) -> str:
        return f"NotebookSession(conversations={sorted(self.conversations)})"

    @property
    def user_ns(self) -> dict[str, Any]:
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    # -- configuration -----------------------------------------------------------------------

    def config_layers(self) -> list[tuple[str, Mapping[str, Any]]]:
        """The session's layers of ``_config.resolve``, below the conversation's sticky ones."""
        traits = {key: self.traits.get(key) for key in TRAIT_KEYS}
        return [("%agent config", dict(self.settings)), ("AgentMagics (traitlets)", traits)]

    def configure(self, assignments: list[str]) -> None:
        """``%agent config key=value …``: set (or, with an empty/none/default value, unset)."""
        for assignment in assignments:
            key, sep, value = assignment.partition("=")
            if not sep:
                raise UsageError(f"%agent config: expected key=value, got '{assignment}'")
            key = key.strip().replace("-", "_")
            try:
                converted = convert_setting(key, value)
            except ValueError as exc:
                raise UsageError(f"%agent config: {exc}") from None
            if converted is None:
                self.settings.pop(key, None)
            else:
                self.settings[key] = converted

    def resolve(self, conversation: Conversation) -> Resolved:
        return conversation.resolve(self.config_layers(), {})

    def render_mode(self) -> str:
        return render_mode(self.user_ns, self.shell)

    # -- conversations and tools -------------------------------------------------------------

    def conversation(self, name: str | None = None, agent_var: str | None = None) -> Conversation:
        """The named (default: the default) conversation, or the one around ``--agent VAR``."""
        if agent_var:
            value = self.user_ns.get(agent_var, _MISSING)
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
        """``AgentTool``s for namespace names (functions become tools); a ``UsageError`` names the
        first that is missing or not usable."""
        namespace = self.user_ns
        tools = []
        for name in names:
            if name not in namespace:
                raise UsageError(f"--tools: '{name}' is not defined in the notebook namespace")
            try:
                tools.append(as_tool(namespace[name], name))
            except (TypeError, ValueError) as exc:
                raise UsageError(f"--tools: {exc}") from None
        return tools

    def kernel_tools(self, approve: bool) -> list[Any]:
        """The kernel tools over this shell, bounded as ``%agent config`` says."""
        from ._kernel_tools import output_bounds

        limit, max_side = output_bounds(self.settings)
        return kernel_tools(self.shell, approve=approve, limit=limit, image_max_side=max_side)

    # -- servers -----------------------------------------------------------------------------

    def start_demo(self) -> str:
        """Start the demo model (once) and point the default conversation at it; its URL."""
        from tinyagent.testing import DemoBrain, ModelServer, cassette_brain

        if self.demo_server is None:
            self.demo_server = ModelServer(cassette_brain(DemoBrain())).start()
        url: str = self.demo_server.url
        self.conversations["default"].sticky.update(
            provider="demo", model="tinyagent-demo", base_url=url
        )
        return url

    def stop_demo(self) -> None:
        if self.demo_server is not None:
            self.demo_server.stop()
            self.demo_server = None
        default = self.conversation()
        for key in ("provider", "base_url", "model"):
            default.sticky.pop(key, None)

    def stop_servers(self) -> None:
        """Stop the demo and cassette servers (``%unload_ext``); conversations stay."""
        servers = [self.demo_server, *self.cassette_servers.values()]
        self.demo_server = None
        self.cassette_servers.clear()
        for server in servers:
            if server is not None:
                server.stop()

    def _through_cassette(
        self, conv: Conversation, args: argparse.Namespace, resolved: Resolved | None
    ) -> Resolved:
        """Route this cell's run through a loopback server that replays or records a cassette."""
        if args.replay and args.record:
            raise UsageError("--replay and --record cannot be combined")
        from tinyagent.testing import ModelServer, cassette_brain
        from tinyagent.testing._cassette_switch import CassetteSetting

        base = resolved or self.resolve(conv)
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

    # -- cells -------------------------------------------------------------------------------

    def prepare_fix(self, args: argparse.Namespace) -> CellRun | None:
        """``%agent fix [options]``: the last exception as the prompt of a ``%%agent`` run."""
        from ._fix import NO_EXCEPTION, fix_prompt, last_exception

        exc = last_exception()
        if exc is None:
            raise UsageError(NO_EXCEPTION)
        args.no_interpolate = True  # tracebacks are full of braces and @
        return self.prepare(args, fix_prompt(self.shell, exc, kernel=args.kernel))

    def prepare(self, args: argparse.Namespace, cell: str) -> CellRun | None:
        """Turn parsed ``%%agent`` options and the body into a run; ``None`` when the run was
        refused (the missing-key banner is already shown)."""
        if args.agent and args.name:
            raise UsageError("--agent and --name cannot be combined")
        if isinstance(args.cache, str):
            raise UsageError(f"--cache {args.cache}: a resume-cache path is for --map cells")
        load_dotenv()
        conv = self.conversation(args.name, args.agent)
        if conv.running():
            raise UsageError(
                f"conversation '{conv.name}' is still running; use %agent stop, %agent steer or "
                "%agent followup, or wait for it"
            )
        body = cell.rstrip("\r\n")  # IPython hands the body over with its final newline
        text = body if args.no_interpolate else interpolate(body, self.user_ns)
        if not text.strip():
            raise UsageError("%%agent needs a prompt in the cell body")
        prompt: str | UserMessage = text
        if not args.no_interpolate:
            blocks, notices = mentions(text, self.user_ns)
            for notice in notices:
                print(notice)
            if blocks:  # each @variable's summary as its own labelled block after the prompt
                parts: list[TextContent | ImageContent] = [TextContent(text=text)]
                parts += [TextContent(text=b) for b in blocks]
                prompt = UserMessage(content=parts, timestamp=now_ms())
        tools, overrides, resolved = self.routing(conv, args)
        if args.new:
            conv.agent.reset()
        if args.replay or args.record:
            resolved = self._through_cassette(conv, args, resolved)
        mode = "quiet" if args.quiet else self.render_mode()
        if args.code:
            args.format = "code"
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
            extra_tools=self.kernel_tools(approve=not args.yes) if args.kernel else [],
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            cache=args.cache,
            confirm=args.confirm,
            instruction=CODE_ONLY if args.code else None,
            overrides=overrides,
        )
        spec.on_done.append(lambda message: self._store(message, args))
        conv.current = run  # visible to %agent stop/steer before the run's loop picks it up
        return CellRun(conv, spec, run, background=bool(args.bg))

    def routing(
        self, conv: Conversation, args: argparse.Namespace
    ) -> tuple[list[Any] | None, dict[str, str], Resolved | None]:
        """The cell's tools, ``--agent`` overrides and resolved settings (sticky ones stored)."""
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
        overrides: dict[str, str] = {}
        resolved: Resolved | None = None
        if conv.external:
            overrides = {k: v for k, v in sticky.items() if v is not None}
        else:
            conv.update_sticky(**sticky)
            resolved = self.resolve(conv)
        return tools, overrides, resolved

    # -- %%agent --map (_map_cell.py) -------------------------------------------------------

    def prepare_map(self, args: argparse.Namespace, cell: str) -> _map_cell.MapCell | None:
        """The batch of a ``%%agent --map VAR`` cell; ``None`` when refused."""
        return _map_cell.prepare_map(self, args, cell)

    async def run_map(self, cell: _map_cell.MapCell) -> Any:
        """The batch awaited on the kernel loop; its result, stored in the namespace."""
        return await _map_cell.run_map(self, cell)

    def run_map_blocking(self, cell: _map_cell.MapCell) -> Any:
        """The batch on a worker-thread loop, joined; its result, stored in the namespace."""
        return _map_cell.run_map_blocking(self, cell)

    def start_background(self, cell: CellRun) -> AgentRun:
        """``--bg``: a task on the running loop (a worker loop when none runs); the handle."""
        loop = running_loop()
        if loop is not None:
            loop.create_task(execute(cell.conversation, cell.spec, cell.run))
        else:
            start_in_worker(lambda: execute(cell.conversation, cell.spec, cell.run))
        self.user_ns["_agent_bg"] = cell.run
        return cell.run

    def run_blocking(self, cell: CellRun) -> None:
        """No one can await (``run_cell_magic``, a terminal): a worker-thread loop, joined;
        Ctrl-C / the kernel interrupt stops the run."""
        run_blocking(
            lambda: execute(cell.conversation, cell.spec, cell.run), on_interrupt=cell.run.stop
        )

    async def run(self, cell: CellRun) -> None:
        """The input-transformer path: awaited on the kernel loop."""
        await execute(cell.conversation, cell.spec, cell.run)

    def _store(self, message: Any, args: argparse.Namespace) -> None:
        if message is None:
            return
        namespace = self.user_ns
        namespace["_agent_last"] = message
        if args.out:
            namespace[args.out] = message
        if args.format == "code":
            from tinyagent.agent import extract_text

            code = first_code_block(extract_text(message))
            if code is not None:
                self.shell.set_next_input(code, replace=False)
