"""``%agent history``, ``usage``, ``export`` and ``load``: a conversation as a transcript."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import display

from ._document import RunDocument, message_text
from ._static import StaticOutput

if TYPE_CHECKING:
    from ._conversation import Conversation
    from ._session import NotebookSession

TRANSCRIPT_FORMAT = "tinyagent-transcript"


def show_table(rows: list[list[str]], header: list[str], title: str = "") -> None:
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


def cmd_history(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    messages = list(conv.agent.state.messages)
    if not messages:
        print(f"Conversation '{conv.name}' is empty.")
        return
    doc = RunDocument(transcript=True)
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


def cmd_usage(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    rows, total = _usage_rows(list(conv.agent.state.messages))
    rows.append(
        [
            "total",
            *(str(int(total[k])) for k in ("input", "output", "cache_read", "cache_write")),
            f"{total['cost']:.6f}",
            "",
        ]
    )
    show_table(
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


def cmd_export(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
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


def cmd_load(session: NotebookSession, conv: Conversation, rest: list[str]) -> None:
    from pydantic import ValidationError

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
            by_role: dict[str, type[UserMessage | AssistantMessage | ToolResultMessage]] = {
                "user": UserMessage,
                "assistant": AssistantMessage,
                "tool_result": ToolResultMessage,
            }
            messages: list[Any] = [
                by_role[m["role"]].model_validate(m) for m in data["messages"]
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
