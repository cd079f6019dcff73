"""Turning a :class:`Reply` (and its optional :class:`Fault`) into a plan the server executes.

A :class:`ResponsePlan` says which head to send, which body events, how to pace them, where to
stall and how the response ends (cleanly, FIN or RST). Planning is pure; the server in
``_server.py`` only follows the plan, so every fault behaves the same in-process and in a
subprocess. Healthy plans are cached on the Reply, so a scripted reply that repeats (or a
benchmark reply) renders its body once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from ._reply import Fault, Reply
from ._sse import completion_json, estimate_usage, stream_events

__all__ = ["ResponsePlan", "plan_response", "status_line"]

Ending = Literal["complete", "drop", "reset"]
_MALFORMED = b'data: {"id":"chatcmpl-broken","choices":[{"index":0,"delta":{"content":"x"\n\n'


def status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode("latin-1"))


@dataclass
class ResponsePlan:
    """Everything the server needs to write one response."""

    status: int
    headers: list[tuple[str, str]]
    events: list[bytes]
    framing: Literal["chunked", "length", "close"] = "chunked"
    delay: float = 0.0
    ending: Ending = "complete"
    stall_at: int | None = None  # stall after this many events were written
    stall_seconds: float | None = None  # None = until the client leaves
    headers_after: float | None = None  # stall before the head; with stall_forever: never answer
    stall_forever_before_headers: bool = False
    byte_pause: float | None = None  # multibyte split: one byte per send
    # the Reply's cache entry for a healthy stream: the server keeps the framed body there
    cache_slot: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def streamed_straight(self) -> bool:
        """True when the whole body can go out in one write."""
        return (self.delay <= 0 and self.stall_at is None and self.byte_pause is None
                and self.ending == "complete")


def _json_headers(extra: Mapping[str, str]) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), *extra.items()]


def _sse_headers(reply: Reply) -> list[tuple[str, str]]:
    headers = {"content-type": ("Content-Type", "text/event-stream; charset=utf-8"),
               "cache-control": ("Cache-Control", "no-cache")}
    for name, value in reply.headers.items():
        headers[name.lower()] = (name, value)
    return list(headers.values())


def _with_reply_headers(reply: Reply, base: list[tuple[str, str]]) -> list[tuple[str, str]]:
    merged = {name.lower(): (name, value) for name, value in base}
    for name, value in reply.headers.items():
        merged[name.lower()] = (name, value)
    return list(merged.values())


def _error_payload(fault: Fault, reply: Reply, model: str) -> dict[str, Any]:
    message = fault.message or "Upstream error"
    if fault.shape == "openrouter":
        return {"id": reply.response_id, "object": "chat.completion.chunk", "model": model,
                "error": {"code": fault.code, "message": message,
                          "metadata": {"provider_name": "tinyagent-testing"}},
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}
    if fault.shape == "vllm":
        return {"object": "error", "message": message, "type": "BadRequestError",
                "param": None, "code": fault.code}
    if fault.shape == "minimax":
        return {"id": reply.response_id, "choices": None,
                "base_resp": {"status_code": fault.code or 1000, "status_msg": message}}
    return {"error": {"message": message, "type": "server_error", "param": None,
                      "code": fault.code}}


def _status_plan(fault: Fault) -> ResponsePlan:
    if fault.body is None:
        body = json.dumps(fault.error_object()).encode("utf-8")
    elif isinstance(fault.body, bytes):
        body = fault.body
    elif isinstance(fault.body, str):
        body = fault.body.encode("utf-8")
    else:
        body = json.dumps(dict(fault.body)).encode("utf-8")
    extra = dict(fault.headers)
    if fault.retry_after is not None:
        seconds = fault.retry_after
        extra.setdefault("Retry-After", str(int(seconds)) if seconds == int(seconds) else str(seconds))
    return ResponsePlan(status=fault.status, headers=_json_headers(extra), events=[body],
                        framing="length")


def plan_response(reply: Reply, request: Mapping[str, Any] | None) -> ResponsePlan:
    """The plan for answering ``request`` (the parsed JSON body) with ``reply``."""
    request = request or {}
    model = reply.model or str(request.get("model") or "tinyagent-demo")
    fault = reply.fault
    if fault is not None and fault.kind == "status":
        return _status_plan(fault)
    streaming = bool(request.get("stream"))
    want_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    if reply.raw_sse is not None:
        usage = None
    elif streaming and not want_usage and (fault is None or fault.kind != "json_reply"):
        usage = None  # not sent, so not worth estimating
    else:
        usage = estimate_usage(reply, request)
    if not streaming or (fault is not None and fault.kind == "json_reply"):
        body = completion_json(reply, model=model, usage=usage)
        headers = _with_reply_headers(reply, [("Content-Type", "application/json")])
        plan = ResponsePlan(status=reply.status, headers=headers, events=[body], framing="length")
        return _apply_fault(plan, fault, reply, model, content_end=1)

    key = (model, want_usage, json.dumps(usage, sort_keys=True) if usage else None)
    slot = reply._cache.get(key)
    if slot is None:
        events, content_end = stream_events(reply, model=model, include_usage=want_usage,
                                            usage=usage)
        slot = {"events": events, "content_end": content_end}
        if len(reply._cache) >= 4:
            reply._cache.pop(next(iter(reply._cache)))
        reply._cache[key] = slot
    events, content_end = slot["events"], slot["content_end"]
    plan = ResponsePlan(status=reply.status, headers=_sse_headers(reply), events=events,
                        framing=reply.framing, delay=reply.delay)
    if fault is None:
        plan.cache_slot = slot
        return plan
    return _apply_fault(plan, fault, reply, model, content_end)


def _apply_fault(plan: ResponsePlan, fault: Fault | None, reply: Reply, model: str,
                 content_end: int) -> ResponsePlan:
    if fault is None:
        return plan
    end = b"\r\n\r\n" if reply.crlf else b"\n\n"
    after = fault.after if fault.after is not None else content_end
    events = list(plan.events)
    kind = fault.kind
    if kind == "drop":
        plan.events, plan.ending = events[:after], "reset" if fault.reset else "drop"
    elif kind == "stall":
        plan.stall_at, plan.stall_seconds = min(after, len(events)), fault.seconds
    elif kind == "stall_before_headers":
        plan.headers_after = fault.seconds
        plan.stall_forever_before_headers = fault.seconds is None
    elif kind == "malformed":
        plan.events = [*events[:after], _MALFORMED, *events[after:]]
    elif kind == "inband_error":
        payload = json.dumps(_error_payload(fault, reply, model), ensure_ascii=False)
        plan.events = [*events[:after], b"data: " + payload.encode("utf-8") + end]
    elif kind == "event_error":
        payload = json.dumps({"error": {"message": fault.message or "Internal error",
                                        "code": fault.code}})
        plan.events = [*events[:after], b"event: error\ndata: " + payload.encode("utf-8") + end]
    elif kind == "multibyte_split":
        plan.byte_pause = fault.pause
    elif kind == "truncate":
        keep = content_end if fault.after is None else min(fault.after, content_end)
        plan.events = events[:keep]
    # "json_reply" was decided while planning; "status" never reaches here
    return plan
