"""``%agent`` line subcommands (docs/notebook.md#subcommands).

Keys are never printed, only their source.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ._config import SESSION_KEYS, load_dotenv
from ._transcript import cmd_export, cmd_history, cmd_load, cmd_usage, show_table

if TYPE_CHECKING:
    from ._conversation import Conversation
    from ._session import NotebookSession


def _show_text(text: str) -> None:
    print(text)


def _split_name(args: list[str]) -> tuple[str | None, list[str]]:
    name = None
    rest: list[str] = []
    iterator = iter(args)
    for token in iterator:
        if token == "--name":
            name = next(iterator, None)
            if name is None:
                raise UsageError("--name needs a value")
        elif token.startswith("--name="):
            name = token.split("=", 1)[1]
        else:
            rest.append(token)
    return name, rest


def run_subcommand(session: NotebookSession, line: str) -> Any:
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%agent: {exc}") from None
    if not tokens:
        tokens = ["config"]
    command, rest = tokens[0], tokens[1:]
    name, rest = _split_name(rest)
    handler = _COMMANDS.get(command)
    if handler is None:
        raise UsageError(
            f"%agent: unknown subcommand '{command}'. Known: {', '.join(sorted(_COMMANDS))}"
        )
    if command in ("steer", "followup"):
        # the text keeps its spacing: take it from the raw line
        raw = line.strip()[len(command) :].strip()
        if name is not None:
            raw = raw.replace(f"--name={name}", "").replace(f"--name {name}", "").strip()
        rest = [raw]
    return handler(session, session.conversation(name), rest)


# -- config / reset / tools -------------------------------------------------------------------


def cmd_config(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    session.configure(rest)
    load_dotenv()
    resolved = session.resolve(conv)
    variable, present = resolved.key_variable, resolved.key_is_set
    key_text = (
        f"{variable} ({'set' if present else 'not set'})"
        if variable
        else "none needed (custom provider)"
    )
    rows = [
        ["model", resolved.model, resolved.sources.get("model", "")],
        ["provider", resolved.provider, resolved.sources.get("provider", "")],
        [
            "base_url",
            resolved.base_url or "(provider default)",
            resolved.sources.get("base_url", "default"),
        ],
        ["api key", key_text, "environment"],
        ["system", (resolved.system or "")[:60], resolved.sources.get("system", "default")],
        ["temperature", str(resolved.temperature), resolved.sources.get("temperature", "default")],
        ["max_tokens", str(resolved.max_tokens), resolved.sources.get("max_tokens", "default")],
        ["tools", ", ".join(conv.tool_names or []) or "(none)", "conversation"],
        [
            "render mode",
            session.render_mode(),
            "TINYAGENT_RENDER" if os.environ.get("TINYAGENT_RENDER") else "front-end detection",
        ],
    ]
    show_table(rows, ["setting", "value", "from"], title=f"conversation '{conv.name}'")
    if not rest:
        print(f"Settable with %agent config key=value: {', '.join(SESSION_KEYS)}")


def cmd_reset(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    conv.agent.reset()
    print(f"Conversation '{conv.name}' reset.")


def cmd_tools(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    tools = (
        session.resolve_tools(conv.tool_names) if conv.tool_names else list(conv.agent.state.tools)
    )
    if not tools:
        print("No tools. Add some with %%agent -t name1,name2 (AgentTool objects or functions).")
        return
    rows = []
    for tool in tools:
        params = tool.parameters.get("properties", {}) if isinstance(tool.parameters, dict) else {}
        required = (
            set(tool.parameters.get("required", [])) if isinstance(tool.parameters, dict) else set()
        )
        signature = ", ".join(
            f"{p}{'' if p in required else '?'}: {spec.get('type', 'any')}"
            for p, spec in params.items()
        )
        rows.append([tool.name, signature, (tool.description or "").split("\n")[0][:80]])
    show_table(rows, ["tool", "arguments", "description"])


# -- doctor / demo ----------------------------------------------------------------------------


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001
        return "not installed"


def cmd_doctor(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    load_dotenv()
    resolved = session.resolve(conv)
    try:
        import tinyagent._alchemy  # noqa: F401

        alchemy = "loaded"
    except Exception as exc:  # noqa: BLE001
        alchemy = f"NOT loaded ({type(exc).__name__})"
    from tinyagent.alchemy_provider import OpenAICompatModel

    base_url = (
        resolved.base_url
        or OpenAICompatModel(provider=resolved.provider, id=resolved.model).base_url
    )
    endpoint = _probe(base_url)
    variable, present = resolved.key_variable, resolved.key_is_set
    widgets = "available" if _has_widgets(session.shell) else "unavailable (no kernel)"
    rows = [
        ["tiny-agent-os", _version("tiny-agent-os")],
        ["python", sys.version.split()[0]],
        ["tinyagent._alchemy", alchemy],
        ["model / provider", f"{resolved.model} / {resolved.provider}"],
        ["base URL", base_url],
        ["endpoint", endpoint],
        ["API key", _key_status(variable, present, resolved.missing_key_message() is None)],
        [
            "ipykernel / IPython / ipywidgets",
            f"{_version('ipykernel')} / {_version('ipython')} / {_version('ipywidgets')}",
        ],
        [
            "anywidget / nh3 / markdown-it-py",
            f"{_version('anywidget')} / {_version('nh3')} / {_version('markdown-it-py')}",
        ],
        ["front end", _front_end(session.shell)],
        ["widgets", widgets],
        ["render mode", session.render_mode()],
    ]
    show_table(rows, ["check", "result"], title="tinyagent doctor")


def _key_status(variable: str | None, present: bool, runnable: bool) -> str:
    if variable is None:
        return "none needed"
    if present:
        return f"{variable} (set)"
    if runnable:
        return f"{variable} (not set; not needed for a local base URL)"
    return f"{variable} (not set)"


def _probe(chat_url: str) -> str:
    import httpx

    url = chat_url.rsplit("/chat/completions", 1)[0] + "/models"
    try:
        response = httpx.get(url, timeout=2.0)
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    return f"answers (HTTP {response.status_code} from GET /models)"


def _has_widgets(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


def _front_end(shell: Any) -> str:
    if os.environ.get("COLAB_RELEASE_TAG"):
        return "Colab"
    if (
        "__vsc_ipynb_file__" in shell.user_ns
        or os.environ.get("PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING") == "1"
    ):
        return "VS Code"
    if os.environ.get("JPY_SESSION_NAME"):
        return "Jupyter server (JupyterLab / Notebook 7)"
    if getattr(shell, "kernel", None) is None:
        return "terminal IPython"
    return "unknown (headless execution or an unmarked front end)"


def cmd_demo(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    if rest and rest[0] in ("off", "stop"):
        session.stop_demo()
        print("Stopped the offline demo model.")
        return
    from tinyagent.testing._cassette_switch import cassette_setting

    try:
        setting = cassette_setting()  # TINYAGENT_CASSETTE=record:PATH|replay:PATH
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    session.start_demo()
    if setting is not None:
        print(setting.describe())
        return
    print(
        "Started the offline demo model: a deterministic model on a loopback server (no network, "
        "no API key). The default conversation now uses it."
    )


# -- running runs -----------------------------------------------------------------------------


def _current(conv: Conversation) -> Any:
    if not conv.running():
        return None
    return conv.current


def cmd_stop(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    run = _current(conv)
    if run is None:
        print(f"Nothing is running in '{conv.name}'.")
        return
    run.stop()
    print(f"Stopping the run of '{conv.name}'.")


def _queue(conv: Conversation, rest: list[str], follow: bool) -> None:
    from tinyagent.agent_types import TextContent, UserMessage

    text = " ".join(rest).strip()
    if not text:
        raise UsageError("%agent steer/followup TEXT: the text is missing")
    run = _current(conv)
    if run is None:
        print(f"Nothing is running in '{conv.name}'; send it with %%agent instead.")
        return
    message = UserMessage(content=[TextContent(text=text)])
    (conv.agent.follow_up if follow else conv.agent.steer)(message)
    print(f"Queued as {'follow-up' if follow else 'steering'} for '{conv.name}'.")


def cmd_steer(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    _queue(conv, rest, follow=False)


def cmd_followup(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    _queue(conv, rest, follow=True)


#: One line per subcommand for ``%agent help`` (the ``%%agent`` options come from its parser).
_SUBCOMMAND_HELP = {
    "config": "[key=value ...]   show the settings and where each comes from, or change them",
    "reset": "                 forget the conversation (settings and tools stay)",
    "history": "               the conversation so far, one row per message",
    "tools": "                 the tools the model is offered",
    "usage": "                 tokens and cost per reply, with the total",
    "export": "PATH            save the conversation as Markdown (.md) or JSON (.json)",
    "load": "PATH              continue a conversation saved with export",
    "doctor": "                check the setup: extension, provider, key, URL",
    "demo": "[off]             start (or stop) the offline demo model: no key, no network",
    "stop": "                  stop the running reply",
    "steer": "TEXT             send TEXT to the running reply at its next turn",
    "followup": "TEXT          queue TEXT to send once the running reply ends",
    "help": "                  this help",
}


def cmd_help(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    """Print the options as plain text: ``%%agent?`` opens IPython's pager, which an executed
    notebook never shows."""
    import argparse

    # The magic's own parser (so this help cannot drift from the options), found through the
    # shell like any registered magic (importing _magics here would be an import cycle), without
    # the RST docstring that magic_arguments puts into its help for the pager.
    parser = argparse.ArgumentParser(
        prog="%%agent",
        usage="%%%%agent [options]   (the cell body is the prompt)",
        add_help=False,
        parents=[session.shell.find_cell_magic("agent").parser],
    )
    lines = [
        parser.format_help().rstrip(),
        "",
        "Consecutive %%agent cells continue one conversation per kernel until %agent reset.",
        "{name} in the cell body is replaced by that variable's value ({{ }} for literal braces).",
        "",
        "%agent subcommands (--name NAME picks a named conversation):",
    ]
    width = max(len(name) for name in _SUBCOMMAND_HELP)
    for name, text in _SUBCOMMAND_HELP.items():
        argument, _, description = text.partition("  ")
        lines.append(f"  %agent {name:<{width}} {argument.strip():<16} {description.strip()}")
    print("\n".join(lines))


_COMMANDS = {
    "help": cmd_help,
    "config": cmd_config,
    "reset": cmd_reset,
    "history": cmd_history,
    "tools": cmd_tools,
    "usage": cmd_usage,
    "export": cmd_export,
    "load": cmd_load,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
    "stop": cmd_stop,
    "steer": cmd_steer,
    "followup": cmd_followup,
}
