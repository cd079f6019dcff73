"""``%agent`` line subcommands (notebook.md §1–§2). Keys are never printed, only their source."""

from __future__ import annotations

import html
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import display

from ._config import SESSION_KEYS, convert_setting, load_dotenv, render_mode
from ._document import RunDocument, message_text
from ._static import StaticOutput

if TYPE_CHECKING:
    from ._conversation import Conversation
    from ._magics import AgentMagics

TRANSCRIPT_FORMAT = "tinyagent-transcript"


def _show_text(text: str) -> None:
    print(text)


def _show_table(rows: list[list[str]], header: list[str], title: str = "") -> None:
    """A small table as html + plain text."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    plain = [title] if title else []
    plain.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    plain += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    table = f'<table class="tinyagent-table">{caption}<thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>'
    display({"text/html": table, "text/plain": "\n".join(plain).rstrip()}, raw=True)


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


def run_subcommand(magics: AgentMagics, line: str) -> Any:
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
    return handler(magics, magics.conversation(name), rest)


# -- config / reset / tools -------------------------------------------------------------------


def cmd_config(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    if rest:
        for assignment in rest:
            key, sep, value = assignment.partition("=")
            if not sep:
                raise UsageError(f"%agent config: expected key=value, got '{assignment}'")
            key = key.strip().replace("-", "_")
            try:
                converted = convert_setting(key, value)
            except ValueError as exc:
                raise UsageError(f"%agent config: {exc}") from None
            if converted is None:
                magics.session.pop(key, None)
            else:
                magics.session[key] = converted
    load_dotenv()
    resolved = conv.resolve(magics.config_layers(), {})
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
            render_mode(magics.ipython.user_ns, magics.ipython),
            "TINYAGENT_RENDER" if os.environ.get("TINYAGENT_RENDER") else "front-end detection",
        ],
    ]
    _show_table(rows, ["setting", "value", "from"], title=f"conversation '{conv.name}'")
    if not rest:
        print(f"Settable with %agent config key=value: {', '.join(SESSION_KEYS)}")


def cmd_reset(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    conv.agent.reset()
    print(f"Conversation '{conv.name}' reset.")


def cmd_tools(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    tools = (
        magics.resolve_tools(conv.tool_names) if conv.tool_names else list(conv.agent.state.tools)
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
    _show_table(rows, ["tool", "arguments", "description"])


# -- history / usage / export / load ----------------------------------------------------------


def replay(doc: RunDocument, messages: list[Any]) -> None:
    """Fold stored messages into a document, as if they had just streamed."""
    from tinyagent.agent_types import MessageEndEvent, MessageStartEvent, ToolExecutionEndEvent

    for message in messages:
        role = getattr(message, "role", None)
        if role == "tool_result":
            from tinyagent.agent_types import AgentToolResult

            result = AgentToolResult(
                content=list(message.content), details=dict(message.details or {})
            )
            doc.apply(
                ToolExecutionEndEvent(
                    tool_call_id=message.tool_call_id or "",
                    tool_name=message.tool_name or "",
                    result=result,
                    is_error=message.is_error,
                )
            )
        elif role in ("user", "assistant"):
            doc.apply(MessageStartEvent(message=message))
            doc.apply(MessageEndEvent(message=message))


def cmd_history(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    messages = list(conv.agent.state.messages)
    if not messages:
        print(f"Conversation '{conv.name}' is empty.")
        return
    doc = RunDocument(show_user=True)
    doc._users_seen = -(10**9)  # every user message is a turn here, not steering
    replay(doc, messages)
    display(StaticOutput.from_document(doc, kind="history"))


def _usage_rows(messages: list[Any]) -> tuple[list[list[str]], dict[str, float]]:
    rows: list[list[str]] = []
    total = {"input": 0.0, "output": 0.0, "cache_read": 0.0, "cache_write": 0.0, "cost": 0.0}
    for message in messages:
        if getattr(message, "role", None) != "assistant":
            continue
        usage = message.usage or {}
        cost = float((usage.get("cost") or {}).get("total", 0.0) or 0.0)
        values = [
            usage.get("input", 0),
            usage.get("output", 0),
            usage.get("cache_read", 0),
            usage.get("cache_write", 0),
        ]
        for key, value in zip(
            ("input", "output", "cache_read", "cache_write"), values, strict=True
        ):
            total[key] += value or 0
        total["cost"] += cost
        rows.append(
            [
                str(len(rows) + 1),
                *(str(v) for v in values),
                f"{cost:.6f}",
                message.stop_reason or "",
            ]
        )
    return rows, total


def cmd_usage(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    rows, total = _usage_rows(list(conv.agent.state.messages))
    rows.append(
        [
            "total",
            *(str(int(total[k])) for k in ("input", "output", "cache_read", "cache_write")),
            f"{total['cost']:.6f}",
            "",
        ]
    )
    _show_table(
        rows,
        ["turn", "in", "out", "cache read", "cache write", "cost $", "stop"],
        title=f"usage of '{conv.name}'",
    )


def transcript_markdown(conv: Conversation) -> str:
    lines = [f"# tinyagent conversation '{conv.name}'", ""]
    system = conv.agent.state.system_prompt
    if system:
        lines += ["## system", "", system, ""]
    for message in conv.agent.state.messages:
        role = getattr(message, "role", "")
        if role == "tool_result":
            lines += [
                f"## tool_result {message.tool_name}",
                "",
                "```",
                message_text(message),
                "```",
                "",
            ]
            continue
        lines += [f"## {role}", ""]
        text = message_text(message)
        if text:
            lines += [text, ""]
        for block in getattr(message, "content", None) or []:
            if getattr(block, "type", None) == "tool_call":
                lines += [
                    f"tool call `{block.name}` {json.dumps(block.arguments, ensure_ascii=False)}",
                    "",
                ]
    return "\n".join(lines)


def cmd_export(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    if len(rest) != 1:
        raise UsageError("%agent export PATH (.md or .json)")
    path = Path(rest[0]).expanduser()
    if path.suffix.lower() == ".json":
        model = conv.agent.state.model
        data = {
            "format": TRANSCRIPT_FORMAT,
            "version": 1,
            "name": conv.name,
            "system_prompt": conv.agent.state.system_prompt,
            # routing only: headers may carry credentials and are never exported
            "model": {k: getattr(model, k, None) for k in ("provider", "id", "api", "base_url")}
            if model
            else None,
            "messages": [
                m.model_dump(mode="json", exclude_none=True) for m in conv.agent.state.messages
            ],
        }
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    elif path.suffix.lower() in (".md", ".markdown"):
        path.write_text(transcript_markdown(conv), encoding="utf-8")
    else:
        raise UsageError("%agent export: the path must end in .md or .json")
    print(f"Exported {len(conv.agent.state.messages)} messages of '{conv.name}' to {path.name}")


def _messages_from_markdown(text: str) -> tuple[str, list[Any]]:
    from tinyagent.agent_types import AssistantMessage, TextContent, UserMessage

    system = ""
    messages: list[Any] = []
    role: str | None = None
    buffer: list[str] = []

    def flush() -> None:
        nonlocal system
        body = "\n".join(buffer).strip("\n")
        if role == "system":
            system = body
        elif role == "user":
            messages.append(UserMessage(content=[TextContent(text=body)]))
        elif role == "assistant":
            messages.append(AssistantMessage(content=[TextContent(text=body)], stop_reason="stop"))

    for line in text.splitlines():
        if line.startswith("## "):
            flush()
            role, buffer = line[3:].split(" ")[0].strip(), []
        elif role is not None:
            buffer.append(line)
    flush()
    return system, messages


def cmd_load(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    from pydantic import TypeAdapter, ValidationError

    from tinyagent.agent_types import AssistantMessage, ToolResultMessage, UserMessage

    if len(rest) != 1:
        raise UsageError("%agent load PATH (.md or .json written by %agent export)")
    path = Path(rest[0]).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"%agent load: cannot read {path}: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
            if data.get("format") != TRANSCRIPT_FORMAT:
                raise ValueError(f"not a {TRANSCRIPT_FORMAT} file")
            by_role = {
                "user": UserMessage,
                "assistant": AssistantMessage,
                "tool_result": ToolResultMessage,
            }
            messages: list[Any] = [
                TypeAdapter(by_role[m["role"]]).validate_python(m) for m in data["messages"]
            ]
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise UsageError(
                f"%agent load: {path.name} is not a valid transcript: {str(exc).splitlines()[0]}"
            ) from None
        system = data.get("system_prompt") or ""
    else:
        system, messages = _messages_from_markdown(text)
    conv.agent.reset()
    conv.agent.replace_messages(messages)
    if system:
        conv.agent.set_system_prompt(system)
        if not conv.external:
            conv.sticky["system"] = system
    print(f"Loaded {len(messages)} messages into '{conv.name}'.")


# -- doctor / demo ----------------------------------------------------------------------------


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001
        return "not installed"


def cmd_doctor(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    load_dotenv()
    resolved = conv.resolve(magics.config_layers(), {})
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
    widgets = "available" if _has_widgets(magics.ipython) else "unavailable (no kernel)"
    rows = [
        ["tiny-agent-os", _version("tiny-agent-os")],
        ["python", sys.version.split()[0]],
        ["tinyagent._alchemy", alchemy],
        ["model / provider", f"{resolved.model} / {resolved.provider}"],
        ["base URL", base_url],
        ["endpoint", endpoint],
        [
            "API key",
            f"{variable} ({'set' if present else 'not set'})" if variable else "none needed",
        ],
        [
            "ipykernel / IPython / ipywidgets",
            f"{_version('ipykernel')} / {_version('ipython')} / {_version('ipywidgets')}",
        ],
        [
            "anywidget / nh3 / markdown-it-py",
            f"{_version('anywidget')} / {_version('nh3')} / {_version('markdown-it-py')}",
        ],
        ["front end", _front_end(magics.ipython)],
        ["widgets", widgets],
        ["render mode", render_mode(magics.ipython.user_ns, magics.ipython)],
    ]
    _show_table(rows, ["check", "result"], title="tinyagent doctor")


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


def cmd_demo(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    if rest and rest[0] in ("off", "stop"):
        if magics.demo_server is not None:
            magics.demo_server.stop()
            magics.demo_server = None
        for key in ("provider", "base_url", "model"):
            magics.conversations["default"].sticky.pop(key, None)
        print("Stopped the offline demo model.")
        return
    from tinyagent.testing import DemoBrain, ModelServer, cassette_brain
    from tinyagent.testing._cassette_switch import cassette_setting

    try:
        setting = cassette_setting()  # TINYAGENT_CASSETTE=record:PATH|replay:PATH
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if magics.demo_server is None:
        magics.demo_server = ModelServer(cassette_brain(DemoBrain())).start()
    default = magics.conversations["default"]
    default.sticky.update(provider="demo", model="tinyagent-demo", base_url=magics.demo_server.url)
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


def cmd_stop(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
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


def cmd_steer(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    _queue(conv, rest, follow=False)


def cmd_followup(magics: AgentMagics, conv: Conversation, rest: list[str]) -> None:
    _queue(conv, rest, follow=True)


_COMMANDS = {
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
