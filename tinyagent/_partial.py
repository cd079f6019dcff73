"""The live partial of one stream: 4-tuples applied to one ``AssistantMessage``.

The one builder of a streaming reply's partial in the package: the built-in provider feeds it the
batches drained from the Rust core, the proxy client and ``ScriptedStreamFn`` feed it one tuple per
event (:meth:`PartialBuilder.feed`), so the test double cannot drift from the real path. One
partial object per stream (docs/architecture.md#partial), updated in place once per delivered
batch; text grows by amortised appends (O(n) for a whole reply); the best-effort ``arguments`` of a
streaming tool call follow :func:`best_effort_arguments`. Events are built without validation. The
tuple shapes are those of ``drain()`` in docs/design.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from tinyagent._constants import BEST_EFFORT_ARGUMENTS_LIMIT
from tinyagent.agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    TextContent,
    ThinkingContent,
    ToolCallContent,
)

logger = logging.getLogger("tinyagent.alchemy_provider")

__all__ = ["BEST_EFFORT_ARGUMENTS_LIMIT", "BatchItem", "PartialBuilder", "best_effort_arguments"]

BatchItem = tuple[str, int | None, Any, Any]


# --------------------------------------------------------------------------------------------
# Events without per-event validation
# --------------------------------------------------------------------------------------------

_EVENT_DEFAULTS: dict[str, Any] = dict.fromkeys(AssistantMessageEvent.model_fields)
_new_object = object.__new__
_set_attr = object.__setattr__


def construct_event(**fields: Any) -> AssistantMessageEvent:
    """The object ``AssistantMessageEvent.model_construct(**fields)`` builds, at a fraction of the cost.

    ``model_construct`` walks every field's default on each call (about 18 µs here); this is a hot
    path (one call per token), so the same four slots are filled directly (about 1 µs). Every field
    of the event defaults to ``None``, which is what makes the shortcut exact.
    """
    event = _new_object(AssistantMessageEvent)
    values = _EVENT_DEFAULTS.copy()
    values.update(fields)
    _set_attr(event, "__dict__", values)
    _set_attr(event, "__pydantic_fields_set__", set(fields))
    _set_attr(event, "__pydantic_extra__", {})
    _set_attr(event, "__pydantic_private__", None)
    return event


def _delta_event(
    kind: str, partial: AssistantMessage, index: int, delta: str
) -> AssistantMessageEvent:
    """:func:`construct_event` for the ``*_delta`` events, the one-per-token case, spelled out."""
    event = _new_object(AssistantMessageEvent)
    _set_attr(
        event,
        "__dict__",
        {
            "type": kind,
            "partial": partial,
            "content_index": index,
            "delta": delta,
            "content": None,
            "tool_call": None,
            "reason": None,
            "message": None,
            "error": None,
            "attempt": None,
            "delay": None,
        },
    )
    _set_attr(event, "__pydantic_fields_set__", {"type", "partial", "content_index", "delta"})
    _set_attr(event, "__pydantic_extra__", {})
    _set_attr(event, "__pydantic_private__", None)
    return event


_core_rule: Callable[[str], dict[str, Any]] | None = None


def best_effort_arguments(partial_json: str) -> dict[str, Any]:
    """Arguments of an unfinished tool call (docs/architecture.md#partial): the object the text
    stands for so far, else ``{}``; ``{}`` as well above :data:`BEST_EFFORT_ARGUMENTS_LIMIT`, where
    re-parsing per delta would make a long argument text cost O(n^2).

    The rule is the Rust core's (``tinyagent._alchemy.partial_arguments``, the one its
    ``next_event()`` partial applies), so every partial fills the same unfinished text alike.
    """
    global _core_rule
    # Characters never outnumber UTF-8 bytes, so the core would answer {} here too; checked first
    # so a long text is not encoded for the call on every delta.
    if len(partial_json) > BEST_EFFORT_ARGUMENTS_LIMIT:
        return {}
    if _core_rule is None:
        # Imported on first use: the proxy and the test double stay importable without the
        # compiled core until a tool call streams.
        from tinyagent._alchemy import partial_arguments

        _core_rule = partial_arguments
    return _core_rule(partial_json)


def final_tool_call(call_id: Any, name: Any, raw: str) -> dict[str, Any]:
    """The ``tool_call_end`` dict of a call whose whole argument text is ``raw``.

    The core's rule (``state::tools::final_arguments``, docs/wire.md#tool-calls), for the streams
    that assemble calls in Python (proxy, ``ScriptedStreamFn``): blank → ``{}``; an object →
    itself; anything else → ``{}`` with the raw text kept as ``partial_json`` so argument
    validation can report it (docs/events.md#argument-validation).
    """
    call: dict[str, Any] = {"type": "tool_call", "id": call_id, "name": name, "arguments": {}}
    if not raw.strip():
        return call
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, dict):
        call["arguments"] = value
    else:
        call["partial_json"] = raw
    return call


# --------------------------------------------------------------------------------------------
# The partial: one AssistantMessage per stream, updated once per drained batch
# --------------------------------------------------------------------------------------------


def _append(block: Any, field: str, pieces: list[str]) -> str:
    """Append the batch's pieces to a block's text in amortised O(len(pieces)).

    The old value is popped out of the block's ``__dict__`` first so the local name holds the only
    reference; CPython then grows the string in place instead of copying it (a long reply stays
    O(n) overall even when every batch carries a single delta). If a reader still holds the old
    string, CPython copies instead, which is the correct thing to do for an immutable value.
    """
    slots = block.__dict__
    text = slots.pop(field, None) or ""
    text += pieces[0] if len(pieces) == 1 else "".join(pieces)
    slots[field] = text
    return text


class PartialBuilder:
    """Applies drained 4-tuples (docs/design.md) to the stream's live partial and makes events."""

    def __init__(
        self, partial: AssistantMessage, scrub: Callable[[str], str] | None = None
    ) -> None:
        self.partial = partial
        self.final: AssistantMessage | None = None
        self.finished = False
        self._scrub = scrub

    def feed(
        self, kind: str, index: int | None = None, a: Any = None, b: Any = None
    ) -> AssistantMessageEvent:
        """Apply one tuple and return its event (streams that deliver one event at a time)."""
        (item,) = self.apply(((kind, index, a, b),))
        return self.materialize(item)

    def apply(self, batch: Iterable[BatchItem]) -> list[AssistantMessageEvent | BatchItem]:
        """Apply a whole batch to the partial; returns its events in order.

        Delta events are returned as their raw 4-tuples and made into events only when the
        consumer takes them (:meth:`materialize`): a batch can hold tens of thousands of deltas,
        and building them all up front would keep as many live objects for the garbage collector
        to walk over and over (measured: 6 µs instead of 2 µs per delta at 80,000 chunks).
        """
        events: list[AssistantMessageEvent | BatchItem] = []
        pending: dict[int, list[str]] = {}
        partial = self.partial
        for item in batch:
            kind, index, a, b = item
            if kind == "text_delta" or kind == "thinking_delta" or kind == "tool_call_delta":
                pieces = pending.get(index)  # type: ignore[arg-type]
                if pieces is None:
                    pending[index] = [a]  # type: ignore[index]
                else:
                    pieces.append(a)
                events.append(item)
            elif kind == "text_start":
                self._place(index, TextContent(text=""))
                events.append(construct_event(type=kind, partial=partial, content_index=index))
            elif kind == "thinking_start":
                self._place(index, ThinkingContent(thinking="", thinking_signature=a))
                events.append(construct_event(type=kind, partial=partial, content_index=index))
            elif kind == "text_end" or kind == "thinking_end":
                # The core's full text is authoritative; this batch's pieces are part of it.
                pending.pop(index, None)  # type: ignore[arg-type]
                block = self._block(index)
                if block is not None:
                    block.__dict__["text" if kind == "text_end" else "thinking"] = a
                events.append(
                    construct_event(type=kind, partial=partial, content_index=index, content=a)
                )
            elif kind == "tool_call_start":
                self._place(index, ToolCallContent(id=a, name=b, arguments={}, partial_json=""))
                announced = ToolCallContent(id=a, name=b, arguments={})
                events.append(
                    construct_event(
                        type=kind, partial=partial, content_index=index, tool_call=announced
                    )
                )
            elif kind == "tool_call_end":
                pending.pop(index, None)  # type: ignore[arg-type]
                call = ToolCallContent.model_validate(a)
                block = self._block(index)
                if isinstance(block, ToolCallContent):
                    slots = block.__dict__
                    slots["id"] = call.id
                    slots["name"] = call.name
                    slots["arguments"] = dict(call.arguments)
                    slots["partial_json"] = call.partial_json
                events.append(
                    construct_event(type=kind, partial=partial, content_index=index, tool_call=call)
                )
            elif kind == "start":
                self._adopt_start(a)
                events.append(construct_event(type=kind, partial=partial))
            elif kind == "retry":
                attempt, delay = b
                events.append(
                    construct_event(
                        type=kind, partial=partial, reason=a, attempt=attempt, delay=delay
                    )
                )
            elif kind == "done" or kind == "error":
                self._flush(pending)
                pending = {}
                final = self._final_message(b)
                if kind == "done":
                    events.append(construct_event(type=kind, reason=a, message=final))
                else:
                    events.append(construct_event(type=kind, reason=a, error=final))
            else:
                logger.warning("ignoring unknown stream event type %r from the core", kind)
        self._flush(pending)
        return events

    def materialize(self, item: AssistantMessageEvent | BatchItem) -> AssistantMessageEvent:
        if item.__class__ is tuple:
            kind, index, delta, _ = item  # type: ignore[misc]
            return _delta_event(kind, self.partial, index, delta)  # type: ignore[arg-type]
        return item  # type: ignore[return-value]

    def _final_message(self, raw: Any) -> AssistantMessage:
        """The terminal event's message: the core's dict validated (its error text scrubbed), or an
        ``AssistantMessage`` a Python stream assembled itself, taken as it is."""
        if isinstance(raw, AssistantMessage):
            final = raw
        else:
            if self._scrub is not None and isinstance(raw, dict):
                text = raw.get("error_message")
                if isinstance(text, str):
                    raw = dict(raw, error_message=self._scrub(text))
            final = AssistantMessage.model_validate(raw)
        self.final = final
        self.finished = True
        return final

    def _adopt_start(self, initial: Any) -> None:
        """Take the core's initial partial fields into the live partial (kept as the same object)."""
        if not isinstance(initial, dict):
            return
        slots = self.partial.__dict__
        for key in ("api", "provider", "model", "timestamp", "stop_reason", "error_message"):
            if key in initial:
                slots[key] = initial[key]
        usage = initial.get("usage")
        if isinstance(usage, dict):
            slots["usage"] = usage

    def _place(self, index: int | None, block: Any) -> None:
        if index is None or index < 0:
            logger.warning("ignoring a block start without a valid content index: %r", index)
            return
        content = self.partial.content
        while len(content) <= index:
            content.append(None)
        content[index] = block

    def _block(self, index: int | None) -> Any:
        content = self.partial.content
        if index is None or not 0 <= index < len(content):
            return None
        return content[index]

    def _flush(self, pending: dict[int, list[str]]) -> None:
        for index, pieces in pending.items():
            block = self._block(index)
            if isinstance(block, TextContent):
                _append(block, "text", pieces)
            elif isinstance(block, ThinkingContent):
                _append(block, "thinking", pieces)
            elif isinstance(block, ToolCallContent):
                raw = _append(block, "partial_json", pieces)
                block.__dict__["arguments"] = best_effort_arguments(raw)
            else:
                logger.warning("dropping deltas for content index %s: no open block there", index)
