"""Rendering a :class:`Reply` as OpenAI-compatible wire bytes (docs/wire.md#chunks,
docs/wire.md#json-replies).

``stream_events`` gives the SSE events of a healthy stream, each a complete ``data: …`` event
(blank line included), in the order a real provider sends them. Content deltas of the same shape
are spliced into a prebuilt JSON template, which yields exactly the bytes ``json.dumps`` would but
makes a 20,000-chunk body cheap to build. ``completion_json`` is the non-streaming answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from ._reply import Reply, ToolCallSpec, Usage

__all__ = [
    "CREATED",
    "chunk_text",
    "completion_json",
    "estimate_usage",
    "message_text",
    "split_raw_events",
    "stream_events",
]

#: Fixed ``created`` timestamp, so that a reply renders to the same bytes every time.
CREATED = 1_700_000_000
_WORD = re.compile(r"\s*\S+\s*|\s+")
_RAW_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def chunk_text(text: str, size: int, by_words: bool = False) -> list[str]:
    """Cut ``text`` into deltas: ``size`` characters each, or one word (with its spaces) each."""
    if not text:
        return []
    if by_words:
        return _WORD.findall(text)
    return [text[i : i + size] for i in range(0, len(text), size)]


def message_text(content: Any) -> str:
    """The text of a request message's ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4) if chars > 0 else 0


def estimate_usage(reply: Reply, request: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``usage`` object for ``reply``: as given, else estimated at ~4 characters a token."""
    if isinstance(reply.usage, Usage):
        return reply.usage.to_wire()
    if isinstance(reply.usage, Mapping):
        return dict(reply.usage)
    prompt_chars = 0
    for message in (request or {}).get("messages") or []:
        if isinstance(message, dict):
            prompt_chars += len(message_text(message.get("content"))) + 4
    tools = (request or {}).get("tools")
    if tools:
        prompt_chars += len(_dumps(tools))
    output_chars = len(reply.text) + len(reply.reasoning)
    output_chars += sum(len(c.arguments_text) + len(c.name) for c in reply.tool_calls)
    return Usage(
        prompt_tokens=_tokens(prompt_chars),
        completion_tokens=max(_tokens(output_chars), 1),
        reasoning_tokens=_tokens(len(reply.reasoning)),
    ).to_wire()


class _Chunks:
    """Builds ``chat.completion.chunk`` events that share id, created and model."""

    def __init__(self, reply: Reply, model: str) -> None:
        self.base = {"id": reply.response_id, "object": "chat.completion.chunk",
                     "created": CREATED, "model": model}
        self.end = b"\r\n\r\n" if reply.crlf else b"\n\n"

    def event(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = dict(self.base)
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
        return b"data: " + _dumps(chunk) + self.end

    def raw(self, payload: dict[str, Any]) -> bytes:
        return b"data: " + _dumps(payload) + self.end

    def template(self, field: str) -> tuple[bytes, bytes]:
        """(prefix, suffix) around the JSON string value of ``delta[field]``."""
        marker = "\u0000SPLICE\u0000"
        whole = self.event({field: marker})
        head, tail = whole.split(_dumps(marker))
        return head, tail

    def deltas(self, field: str, pieces: list[str]) -> Iterator[bytes]:
        head, tail = self.template(field)
        # encode_basestring is what json.dumps(ensure_ascii=False) uses for a str: same bytes,
        # a fraction of the cost per delta
        for piece in pieces:
            yield head + encode_basestring(piece).encode("utf-8") + tail


def _reasoning_events(reply: Reply, chunks: _Chunks) -> list[bytes]:
    pieces = chunk_text(reply.reasoning, reply.chunk_chars, reply.chunking == "words")
    field = reply.reasoning_field
    if field == "think_tag":
        return []  # rendered inline with the content
    if field == "reasoning_details":
        return [
            chunks.event({"reasoning_details": [{"type": "reasoning.text", "id": "reasoning-text-1",
                                                 "format": "MiniMax-response-v1", "index": 0,
                                                 "text": piece}]})
            for piece in pieces
        ]
    return list(chunks.deltas(field, pieces))


def _visible_text(reply: Reply) -> str:
    if reply.reasoning_field == "think_tag" and reply.reasoning:
        return f"<think>{reply.reasoning}</think>\n\n{reply.text}"
    return reply.text


def _tool_call_events(reply: Reply, chunks: _Chunks) -> list[bytes]:
    per_call: list[list[bytes]] = []
    for position, call in enumerate(reply.tool_calls):
        index = call.index if call.index is not None else position
        call_id = call.id or f"call_{position + 1}"
        identity: dict[str, Any] = {"id": call_id, "type": "function"}
        events = []
        head: dict[str, Any] = {"index": index} if call.send_index else {}
        head.update(identity)
        head["function"] = {"name": call.name, "arguments": ""}
        events.append(chunks.event({"tool_calls": [head]}))
        for fragment in call.argument_fragments(reply.chunk_chars):
            part: dict[str, Any] = {"index": index} if call.send_index else {}
            if call.repeat_identity:
                part.update(identity)
                part["function"] = {"name": call.name, "arguments": fragment}
            else:
                part["function"] = {"arguments": fragment}
            events.append(chunks.event({"tool_calls": [part]}))
        per_call.append(events)
    if not reply.interleave_tool_calls:
        return [e for events in per_call for e in events]
    # round-robin: every call opens first, then the fragments of the calls alternate
    merged: list[bytes] = []
    longest = max((len(events) for events in per_call), default=0)
    for step in range(longest):
        merged.extend(events[step] for events in per_call if step < len(events))
    return merged


def stream_events(
    reply: Reply, *, model: str, include_usage: bool, usage: dict[str, Any] | None
) -> tuple[list[bytes], int]:
    """The SSE events of a healthy stream and how many of them carry content.

    The first ``content_end`` events are the comment, the role chunk and the deltas; after
    them come the ``finish_reason`` chunk, the usage chunk (with ``include_usage``) and
    ``[DONE]``. For ``raw_sse`` replies the events are the raw body split at blank lines.
    """
    if reply.raw_sse is not None:
        raw_events = split_raw_events(bytes(reply.raw_sse))
        return raw_events, len(raw_events)
    chunks = _Chunks(reply, model)
    events: list[bytes] = []
    if reply.comment is not None:
        events.append(b": " + reply.comment.encode("utf-8") + chunks.end)
    events.append(chunks.event({"role": "assistant", "content": ""}))
    events.extend(_reasoning_events(reply, chunks))
    text = _visible_text(reply)
    events.extend(chunks.deltas("content", chunk_text(text, reply.chunk_chars,
                                                      reply.chunking == "words")))
    events.extend(_tool_call_events(reply, chunks))
    content_end = len(events)
    placement = reply.usage_placement if include_usage and usage is not None else None
    finish = dict(chunks.base, choices=[{"index": 0, "delta": {},
                                         "finish_reason": reply.effective_finish_reason}])
    if placement in ("finish", "every"):
        finish["usage"] = usage
    events.append(chunks.raw(finish))
    if placement == "separate":
        events.append(chunks.raw(dict(chunks.base, choices=[], usage=usage)))
    if placement == "every" and usage is not None:
        _add_running_usage(events, content_end, usage, reply.comment is not None)
    events.append(b"data: [DONE]" + chunks.end)
    return events, content_end


def _add_running_usage(events: list[bytes], content_end: int, usage: dict[str, Any],
                       has_comment: bool) -> None:
    """vLLM's continuous usage stats: every content chunk carries the counts so far."""
    first = 1 if has_comment else 0
    prompt = usage.get("prompt_tokens", 0)
    for position in range(first, content_end):
        line = events[position]
        end = line[len(line.rstrip(b"\r\n")):]
        chunk = json.loads(line[len(b"data: ") : len(line) - len(end)])
        done = position - first
        chunk["usage"] = {"prompt_tokens": prompt, "completion_tokens": done,
                          "total_tokens": prompt + done}
        events[position] = b"data: " + _dumps(chunk) + end


def split_raw_events(body: bytes) -> list[bytes]:
    """Split exact body bytes after each blank line; joining the parts gives ``body`` back."""
    events: list[bytes] = []
    start = 0
    for match in _RAW_EVENT_END.finditer(body):
        events.append(body[start : match.end()])
        start = match.end()
    if start < len(body):
        events.append(body[start:])
    return events


def _wire_tool_call(call: ToolCallSpec, position: int) -> dict[str, Any]:
    return {"id": call.id or f"call_{position + 1}", "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_text}}


def completion_json(reply: Reply, *, model: str, usage: dict[str, Any] | None) -> bytes:
    """The non-streaming ``chat.completion`` object for ``reply`` (docs/wire.md#json-replies)."""
    text = _visible_text(reply)
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if reply.reasoning and reply.reasoning_field != "think_tag":
        if reply.reasoning_field == "reasoning_details":
            message["reasoning_details"] = [{"type": "reasoning.text", "id": "reasoning-text-1",
                                             "format": "MiniMax-response-v1", "index": 0,
                                             "text": reply.reasoning}]
        else:
            message[reply.reasoning_field] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [_wire_tool_call(c, i) for i, c in enumerate(reply.tool_calls)]
    body: dict[str, Any] = {
        "id": reply.response_id, "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": reply.effective_finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return _dumps(body)
