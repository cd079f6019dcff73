"""Turning the proxy's camelCase SSE events into ``AssistantMessageEvent``s
(docs/architecture.md#proxy).

``process_proxy_event`` updates the stream's one partial in place and returns the event to emit,
or ``None`` for events that produce nothing. It only translates and checks: the partial is changed
by the package's one builder (``tinyagent._partial.PartialBuilder``), the same one the built-in
provider uses, so both streams carry the same blocks and best-effort arguments. Problems are
logged under ``tinyagent.proxy``, never printed (docs/architecture.md#differences #16).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from ._partial import PartialBuilder, final_tool_call
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

_STOP_REASON_ALIASES = {"toolUse": "tool_use", "end_turn": "stop", "max_tokens": "length"}


def parse_streaming_json(json_str: str) -> JsonObject | None:
    """Parse a possibly unfinished JSON object by closing its open braces; ``None`` if it can't.

    1.2.29's public function, with 1.2.29's results. No stream uses it: the partials' best-effort
    arguments follow the core's rule (``tinyagent._partial.best_effort_arguments``), which also
    closes strings and arrays.
    """
    if not isinstance(json_str, str):
        return None
    try:
        value = json.loads(json_str)
    except ValueError:
        stripped = json_str.strip()
        missing = stripped.count("{") - stripped.count("}")
        if stripped.endswith("}") or missing <= 0:
            return None
        try:
            value = json.loads(stripped + "}" * missing)
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


def _feed(
    partial: AssistantMessage, kind: str, index: int | None = None, a: Any = None, b: Any = None
) -> AssistantMessageEvent:
    """Apply one event tuple (docs/design.md#tuples) to ``partial`` with the shared builder.

    A builder per event: it keeps no state of its own besides the partial, which is passed in."""
    return PartialBuilder(partial).feed(kind, index, a, b)


def _slot(partial: AssistantMessage, index: int) -> Any:
    return partial.content[index] if index < len(partial.content) else None


def _fail(partial: AssistantMessage, text: str) -> AssistantMessageEvent:
    logger.warning("proxy stream error: %s", text)
    partial.stop_reason = "error"
    partial.error_message = text
    return _feed(partial, "error", None, "error", partial)


def _start(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
    return _feed(partial, "start")


def _block_start(kind: str) -> ProxyEventHandler:
    def handle(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
        # A thinking block starts without a signature here; thinking_end may bring one.
        return _feed(partial, f"{kind}_start", _index(event))

    return handle


def _not_a(partial: AssistantMessage, what: str, index: int, noun: str) -> AssistantMessageEvent:
    return _fail(partial, f"proxy {what} for content index {index}, which is not {noun}")


def _block_delta(kind: str, cls: type, noun: str) -> ProxyEventHandler:
    """``<kind>_delta``: the delta goes to the block at the event's index, which must be a
    ``cls`` (``noun`` in the error)."""
    what = "toolcall_delta" if kind == "tool_call" else f"{kind}_delta"

    def handle(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
        index = _index(event)
        if not isinstance(_slot(partial, index), cls):
            return _not_a(partial, what, index, noun)
        delta = event.get("delta")
        return _feed(partial, f"{kind}_delta", index, delta if isinstance(delta, str) else "")

    return handle


def _block_end(kind: str) -> ProxyEventHandler:
    cls = TextContent if kind == "text" else ThinkingContent

    def handle(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
        index = _index(event)
        block = _slot(partial, index)
        if not isinstance(block, cls):
            return _not_a(partial, f"{kind}_end", index, f"a {kind} block")
        signature = event.get("contentSignature")
        if signature is not None:
            setattr(block, f"{kind}_signature", signature)
        # The proxy sends no full text with the end event: the text assembled so far is it.
        return _feed(partial, f"{kind}_end", index, getattr(block, kind) or "")

    return handle


def _tool_call_start(event: dict[str, Any], partial: AssistantMessage) -> AssistantMessageEvent:
    return _feed(partial, "tool_call_start", _index(event), event.get("id"), event.get("toolName"))


def _tool_call_end(
    event: dict[str, Any], partial: AssistantMessage
) -> AssistantMessageEvent | None:
    index = _index(event)
    call = _slot(partial, index)
    if not isinstance(call, ToolCallContent):
        logger.warning("proxy toolcall_end for content index %d, which is not a tool call", index)
        return None
    # The proxy sends no final arguments: they are the assembled text, parsed by the core's rule.
    finished = final_tool_call(call.id, call.name, call.partial_json or "")
    return _feed(partial, "tool_call_end", index, finished)


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
    return _feed(partial, "done", None, stop_reason, partial)


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
    return _feed(partial, "error", None, stop_reason, partial)


_HANDLERS: dict[str, ProxyEventHandler] = {
    "start": _start,
    "text_start": _block_start("text"),
    "text_delta": _block_delta("text", TextContent, "a text block"),
    "text_end": _block_end("text"),
    "thinking_start": _block_start("thinking"),
    "thinking_delta": _block_delta("thinking", ThinkingContent, "a thinking block"),
    "thinking_end": _block_end("thinking"),
    "toolcall_start": _tool_call_start,
    "toolcall_delta": _block_delta("tool_call", ToolCallContent, "a tool call"),
    "toolcall_end": _tool_call_end,
    "done": _done,
    "error": _error,
}
