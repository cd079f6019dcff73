"""Turning the proxy's camelCase SSE events into ``AssistantMessageEvent``s
(docs/architecture.md#proxy).

``process_proxy_event`` updates the stream's one partial in place and returns the event to emit,
or ``None`` for events that produce nothing. Problems are logged under ``tinyagent.proxy``,
never printed (docs/architecture.md#differences #16).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .agent_types import (
    STOP_REASONS,
    AssistantMessage,
    AssistantMessageEvent,
    JsonObject,
    TextContent,
    ThinkingContent,
    ToolCallContent,
)

__all__ = ["ProxyEventHandler", "parse_streaming_json", "process_proxy_event"]

logger = logging.getLogger("tinyagent.proxy")

ProxyEventHandler = Callable[[JsonObject, AssistantMessage], AssistantMessageEvent | None]

#: Above this size an in-progress tool call's best-effort arguments are not re-parsed per delta,
#: which would make a long argument text cost O(n^2) (docs/architecture.md#partial); they are set
#: when the call ends.
_LIVE_ARGUMENTS_LIMIT = 64 * 1024

_STOP_REASON_ALIASES = {"toolUse": "tool_use", "end_turn": "stop", "max_tokens": "length"}


def parse_streaming_json(json_str: str) -> JsonObject | None:
    """Parse a possibly unfinished JSON object by closing its open braces; ``None`` if it can't."""
    try:
        value = json.loads(json_str)
    except (TypeError, ValueError):
        value = None
    if isinstance(value, dict):
        return value
    if not isinstance(json_str, str):
        return None
    text = json_str.strip()
    if text.endswith("}"):
        return None
    missing = text.count("{") - text.count("}")
    if missing <= 0:
        return None
    try:
        value = json.loads(text + "}" * missing)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def process_proxy_event(
    proxy_event: dict[str, Any], partial: AssistantMessage
) -> AssistantMessageEvent | None:
    """Apply one proxy event to ``partial`` and return the event to emit."""
    kind = proxy_event.get("type")
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        logger.warning("ignoring proxy event of unknown type %r", kind)
        return None
    return handler(proxy_event, partial)


def _index(proxy_event: dict[str, Any]) -> int:
    value = proxy_event.get("contentIndex")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return 0
    return value


def _put(partial: AssistantMessage, index: int, block: Any) -> None:
    content = partial.content
    while len(content) <= index:
        content.append(None)
    content[index] = block


def _slot(partial: AssistantMessage, index: int) -> Any:
    return partial.content[index] if index < len(partial.content) else None


def _fail(partial: AssistantMessage, text: str) -> AssistantMessageEvent:
    logger.warning("proxy stream error: %s", text)
    partial.stop_reason = "error"
    partial.error_message = text
    return AssistantMessageEvent(type="error", reason="error", error=partial)


def _start(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
    return AssistantMessageEvent(type="start", partial=partial)


def _kind(name: str) -> Any:
    return name  # one of the text_*/thinking_* event types, built from the block kind


def _block_start(kind: str) -> ProxyEventHandler:
    def handle(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
        index = _index(event)
        block = TextContent(text="") if kind == "text" else ThinkingContent(thinking="")
        _put(partial, index, block)
        return AssistantMessageEvent(
            type=_kind(f"{kind}_start"), content_index=index, partial=partial
        )

    return handle


def _block_delta(kind: str) -> ProxyEventHandler:
    cls = TextContent if kind == "text" else ThinkingContent

    def handle(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
        index = _index(event)
        block = _slot(partial, index)
        if not isinstance(block, cls):
            return _fail(
                partial,
                f"proxy {kind}_delta for content index {index}, which is not a {kind} block",
            )
        delta = event.get("delta")
        delta = delta if isinstance(delta, str) else ""
        setattr(block, kind, (getattr(block, kind) or "") + delta)
        return AssistantMessageEvent(
            type=_kind(f"{kind}_delta"), content_index=index, delta=delta, partial=partial
        )

    return handle


def _block_end(kind: str) -> ProxyEventHandler:
    cls = TextContent if kind == "text" else ThinkingContent

    def handle(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
        index = _index(event)
        block = _slot(partial, index)
        if not isinstance(block, cls):
            return _fail(
                partial, f"proxy {kind}_end for content index {index}, which is not a {kind} block"
            )
        signature = event.get("contentSignature")
        if signature is not None:
            setattr(block, f"{kind}_signature", signature)
        return AssistantMessageEvent(
            type=_kind(f"{kind}_end"),
            content_index=index,
            content=getattr(block, kind) or "",
            partial=partial,
        )

    return handle


def _tool_call_start(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
    index = _index(event)
    call = ToolCallContent(
        id=event.get("id"), name=event.get("toolName"), arguments={}, partial_json=""
    )
    _put(partial, index, call)
    return AssistantMessageEvent(
        type="tool_call_start", content_index=index, tool_call=call, partial=partial
    )


def _tool_call_delta(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
    index = _index(event)
    call = _slot(partial, index)
    if not isinstance(call, ToolCallContent):
        return _fail(
            partial, f"proxy toolcall_delta for content index {index}, which is not a tool call"
        )
    delta = event.get("delta")
    delta = delta if isinstance(delta, str) else ""
    call.partial_json = (call.partial_json or "") + delta
    if len(call.partial_json) <= _LIVE_ARGUMENTS_LIMIT:
        call.arguments = parse_streaming_json(call.partial_json) or {}
    return AssistantMessageEvent(
        type="tool_call_delta", content_index=index, delta=delta, partial=partial
    )


def _tool_call_end(
    event: dict[str, Any], partial: AssistantMessage
) -> AssistantMessageEvent | None:
    index = _index(event)
    call = _slot(partial, index)
    if not isinstance(call, ToolCallContent):
        logger.warning("proxy toolcall_end for content index %d, which is not a tool call", index)
        return None
    raw = call.partial_json or ""
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        call.arguments, call.partial_json = parsed, None
    else:  # keep the raw text so validation can report it (docs/events.md#argument-validation)
        call.arguments = {}
        call.partial_json = raw
    return AssistantMessageEvent(
        type="tool_call_end", content_index=index, tool_call=call, partial=partial
    )


def _done(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
    reason = event.get("reason")
    if isinstance(reason, str) and reason in STOP_REASONS:
        stop_reason = reason
    elif isinstance(reason, str) and reason in _STOP_REASON_ALIASES:
        stop_reason = _STOP_REASON_ALIASES[reason]
    else:
        logger.warning("proxy done event with unknown reason %r; using 'stop'", reason)
        stop_reason = "stop"
    partial.stop_reason = stop_reason  # type: ignore[assignment]
    usage = event.get("usage")
    if isinstance(usage, dict):
        partial.usage = usage
    return AssistantMessageEvent(type="done", reason=stop_reason, message=partial)


def _error(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
    reason = event.get("reason")
    stop_reason = reason if isinstance(reason, str) and reason in STOP_REASONS else "error"
    partial.stop_reason = stop_reason  # type: ignore[assignment]
    message = event.get("errorMessage")
    partial.error_message = (
        message if isinstance(message, str) and message else "Proxy stream error"
    )
    usage = event.get("usage")
    if isinstance(usage, dict):
        partial.usage = usage
    return AssistantMessageEvent(type="error", reason=stop_reason, error=partial)


_HANDLERS: dict[str, ProxyEventHandler] = {
    "start": _start,
    "text_start": _block_start("text"),
    "text_delta": _block_delta("text"),
    "text_end": _block_end("text"),
    "thinking_start": _block_start("thinking"),
    "thinking_delta": _block_delta("thinking"),
    "thinking_end": _block_end("thinking"),
    "toolcall_start": _tool_call_start,
    "toolcall_delta": _tool_call_delta,
    "toolcall_end": _tool_call_end,
    "done": _done,
    "error": _error,
}
