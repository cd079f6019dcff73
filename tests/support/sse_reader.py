"""A small, independent reader of OpenAI-compatible SSE bodies, for checking what a server sent.

Deliberately plain Python and separate from the Rust parser: the server's tests use it to
rebuild text, reasoning and tool calls from raw bytes, so a rendering bug cannot hide behind a
parser with the same bug.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SseEvent", "StreamResult", "assemble", "parse_sse"]


@dataclass
class SseEvent:
    data: str
    event: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class StreamResult:
    """What a stream adds up to."""

    text: str = ""
    reasoning: dict[str, str] = field(default_factory=dict)  # wire field -> text
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # id, name, arguments (str)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    done: bool = False
    errors: list[Any] = field(default_factory=list)
    chunks: int = 0


def parse_sse(body: bytes) -> list[SseEvent]:
    """Split a body into SSE events (comments dropped; a last event without its blank line is
    kept, as docs/wire.md#sse-framing says)."""
    events: list[SseEvent] = []
    data: list[str] = []
    kind: str | None = None
    for raw_line in body.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw_line == "":
            if data:
                events.append(SseEvent("\n".join(data), kind))
            data, kind = [], None
            continue
        if raw_line.startswith(":"):
            continue
        name, _, value = raw_line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
    if data:
        events.append(SseEvent("\n".join(data), kind))
    return events


def assemble(events: list[SseEvent]) -> StreamResult:
    """Rebuild the reply: text, reasoning per field, tool calls by index (else id)."""
    result = StreamResult()
    calls: dict[Any, dict[str, Any]] = {}
    last_key: Any = None
    for event in events:
        if event.data == "[DONE]":
            result.done = True
            continue
        payload = event.json
        if event.event == "error" or "error" in payload or payload.get("object") == "error":
            result.errors.append(payload)
            continue
        result.chunks += 1
        if payload.get("usage"):
            result.usage = payload["usage"]
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                result.text += delta["content"]
            for name in ("reasoning_content", "reasoning", "reasoning_text"):
                if delta.get(name):
                    result.reasoning[name] = result.reasoning.get(name, "") + delta[name]
            for detail in delta.get("reasoning_details") or []:
                text = result.reasoning.get("reasoning_details", "") + detail.get("text", "")
                result.reasoning["reasoning_details"] = text
            for fragment in delta.get("tool_calls") or []:
                key = fragment.get("index", fragment.get("id") or last_key)
                last_key = key
                call = calls.setdefault(key, {"id": None, "name": None, "arguments": ""})
                call["id"] = call["id"] or fragment.get("id")
                function = fragment.get("function") or {}
                call["name"] = call["name"] or function.get("name")
                call["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                result.finish_reason = choice["finish_reason"]
    result.tool_calls = list(calls.values())
    return result
