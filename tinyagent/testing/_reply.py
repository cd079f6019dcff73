"""What one response of the loopback server looks like: :class:`Reply` and its parts.

A :class:`Reply` describes a whole HTTP response in domain terms (text, reasoning, tool calls,
usage, pacing) and the server renders it in the OpenAI-compatible wire format
(docs/wire.md#chunks).
A :class:`Fault` attached to a reply bends that response in one precise way (an HTTP error, a
dropped connection, a stall, …) so that client error paths can be tested. ``raw_sse`` is the escape
hatch that serves exact bytes, e.g. a recorded provider stream.

All types here are plain dataclasses and round-trip through :meth:`Reply.to_dict` /
:meth:`Reply.from_dict`, which is how scripted turns reach a server in another process.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

__all__ = ["Fault", "FaultKind", "ReasoningField", "Reply", "ToolCallSpec", "Usage"]

ReasoningField = Literal[
    "reasoning_content", "reasoning", "reasoning_text", "reasoning_details", "think_tag"
]
FaultKind = Literal[
    "status",
    "drop",
    "stall",
    "stall_before_headers",
    "malformed",
    "inband_error",
    "event_error",
    "multibyte_split",
    "truncate",
    "json_reply",
]
ErrorShape = Literal["openai", "openrouter", "vllm", "minimax"]
Framing = Literal["chunked", "length", "close"]
UsagePlacement = Literal["separate", "finish", "every"]


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Usage:
    """Token counts reported for a reply (the usage chunk, or ``usage`` of a JSON completion).

    ``cached_tokens`` goes to ``prompt_tokens_details.cached_tokens`` (OpenAI style),
    ``cache_write_tokens`` to ``prompt_tokens_details.cache_write_tokens``; ``cost`` (OpenRouter
    style) is sent only when set. For any other shape give ``Reply.usage`` a plain dict instead.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``usage`` object as an OpenAI-compatible server sends it."""
        wire: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": self.cached_tokens,
                "cache_write_tokens": self.cache_write_tokens,
            },
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }
        if self.cost is not None:
            wire["cost"] = self.cost
        return wire


@dataclass(frozen=True)
class ToolCallSpec:
    """One scripted tool call of a :class:`Reply`.

    ``arguments`` is a dict (sent as compact JSON) or a raw string, which may be invalid JSON on
    purpose. The argument text is streamed in ``fragment_chars``-sized pieces (default: the
    reply's ``chunk_chars``), or exactly as ``fragments`` when given. ``index`` defaults to the
    call's position; ``send_index=False`` omits it (Mistral/Gemini style, the id then identifies
    the call), and ``repeat_identity=True`` repeats id, type and name in every fragment (as some
    OpenRouter routes do; needed for index-less calls whose fragments interleave).
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    fragments: Sequence[str] | None = None
    fragment_chars: int | None = None
    index: int | None = None
    send_index: bool = True
    repeat_identity: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"ToolCallSpec.name must be a str, got {type(self.name).__name__}")
        if not isinstance(self.arguments, str | Mapping):
            raise TypeError("ToolCallSpec.arguments must be a dict or a raw JSON string")
        if self.fragment_chars is not None and self.fragment_chars < 1:
            raise ValueError("ToolCallSpec.fragment_chars must be >= 1")
        if self.fragments is not None and not all(isinstance(f, str) for f in self.fragments):
            raise TypeError("ToolCallSpec.fragments must be a list of str")

    @property
    def arguments_text(self) -> str:
        """The complete argument string the client should assemble."""
        if self.fragments is not None:
            return "".join(self.fragments)
        if isinstance(self.arguments, str):
            return self.arguments
        return _compact(dict(self.arguments))

    def argument_fragments(self, default_chars: int) -> list[str]:
        """The argument string cut into the fragments that are streamed."""
        if self.fragments is not None:
            return [f for f in self.fragments if f]
        size = self.fragment_chars or default_chars
        text = self.arguments_text
        return [text[i : i + size] for i in range(0, len(text), size)]


_DEFAULT_ERROR_MESSAGES = {
    400: ("Invalid request", "invalid_request_error", None),
    401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to use this model", "permission_error", None),
    404: ("The model does not exist", "invalid_request_error", "model_not_found"),
    408: ("Request timed out", "timeout_error", None),
    429: ("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request", "server_error", None),
    502: ("Bad gateway: upstream provider error", "server_error", None),
    503: ("The server is overloaded, please try again later", "server_error", "overloaded"),
    504: ("Gateway timeout", "server_error", None),
}


@dataclass(frozen=True)
class Fault:
    """One injected failure; build it with the class methods, which document each kind.

    ``after`` counts SSE events as sent (the optional comment and the role chunk included). Every
    fault ends the response in its own way; the request log shows what was written.
    """

    kind: FaultKind
    after: int | None = 0
    status: int = 500
    body: bytes | str | Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    seconds: float | None = None
    reset: bool = False
    shape: ErrorShape = "openai"
    code: int | str | None = None
    message: str | None = None
    pause: float = 0.002

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {get_args(FaultKind)}")
        if self.shape not in get_args(ErrorShape):
            raise ValueError(f"unknown error shape {self.shape!r}; one of {get_args(ErrorShape)}")
        if self.after is not None and self.after < 0:
            raise ValueError("Fault.after must be >= 0")
        if self.seconds is not None and self.seconds < 0:
            raise ValueError("Fault.seconds must be >= 0 (None = forever)")
        if not 100 <= self.status <= 599:
            raise ValueError(f"Fault.status must be an HTTP status, got {self.status}")

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def http(
        cls,
        status: int,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        body: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        code: int | str | None = None,
    ) -> Fault:
        """Answer with ``status`` and an OpenAI-style JSON error body (or ``body`` verbatim);
        ``retry_after`` adds a ``Retry-After`` header (seconds)."""
        return cls("status", status=status, message=message, retry_after=retry_after,
                   body=body, headers=dict(headers or {}), code=code)

    @classmethod
    def drop(cls, after: int, *, reset: bool = False) -> Fault:
        """Close the connection after ``after`` events, mid-body (FIN; RST when ``reset``)."""
        return cls("drop", after=after, reset=reset)

    @classmethod
    def stall(cls, after: int, seconds: float | None = None) -> Fault:
        """Stop writing after ``after`` events for ``seconds`` (then carry on), or until the
        client leaves or the server stops when ``seconds`` is None."""
        return cls("stall", after=after, seconds=seconds)

    @classmethod
    def stall_before_headers(cls, seconds: float | None = None) -> Fault:
        """Read the request and send nothing for ``seconds`` (then answer normally), or never."""
        return cls("stall_before_headers", seconds=seconds)

    @classmethod
    def malformed(cls, after: int) -> Fault:
        """Insert a ``data:`` line of invalid JSON after ``after`` events; the rest follows."""
        return cls("malformed", after=after)

    @classmethod
    def inband_error(
        cls,
        after: int,
        message: str = "Upstream overloaded",
        *,
        code: int | str | None = 502,
        shape: ErrorShape = "openrouter",
    ) -> Fault:
        """Send an error object in a ``data:`` event after ``after`` events and end the body
        (no ``[DONE]``). Shapes: ``openrouter`` (error + ``finish_reason: "error"``),
        ``openai`` (``{"error": {...}}``), ``vllm`` (``{"object": "error", ...}``),
        ``minimax`` (``base_resp`` with a non-zero ``status_code``)."""
        return cls("inband_error", after=after, message=message, code=code, shape=shape)

    @classmethod
    def event_error(
        cls, after: int, message: str = "Internal error", *, code: int | str | None = 500
    ) -> Fault:
        """Send ``event: error`` with an error payload after ``after`` events and end the body."""
        return cls("event_error", after=after, message=message, code=code)

    @classmethod
    def multibyte_split(cls, pause: float = 0.002) -> Fault:
        """Write the body one byte per send (each its own HTTP chunk), pausing ``pause`` seconds
        inside every multi-byte UTF-8 sequence so that emoji and CJK arrive split across reads."""
        return cls("multibyte_split", pause=pause)

    @classmethod
    def truncate(cls, after: int | None = None) -> Fault:
        """End the body cleanly but early: with neither ``finish_reason`` nor ``[DONE]``.
        ``after=None`` keeps every content event; a number keeps only the first ``after``."""
        return cls("truncate", after=after)

    @classmethod
    def json_reply(cls) -> Fault:
        """Answer a streaming request with a non-streaming ``chat.completion`` JSON object."""
        return cls("json_reply")

    def error_object(self) -> dict[str, Any]:
        """The OpenAI-style ``{"error": {...}}`` object for this fault's status."""
        default_msg, err_type, default_code = _DEFAULT_ERROR_MESSAGES.get(
            self.status, ("Request failed", "server_error", None)
        )
        code = self.code if self.code is not None else default_code
        return {"error": {"message": self.message or default_msg, "type": err_type,
                          "param": None, "code": code}}


@dataclass
class Reply:
    """One response of the loopback server.

    Streamed as: the optional ``comment`` line, a role chunk, the reasoning (in the wire field
    named by ``reasoning_field``: ``reasoning_content``, ``reasoning``, ``reasoning_text``,
    MiniMax ``reasoning_details``, or ``think_tag`` = inline ``<think>…</think>`` in the content),
    the text, the tool calls, a ``finish_reason`` chunk (default ``tool_calls`` when there are
    calls, else ``stop``), the usage chunk (only when the request asked with
    ``stream_options.include_usage``) and ``[DONE]``. Text and reasoning are cut into
    ``chunk_chars`` characters per delta (``chunking="words"``: one word per delta). ``delay``
    paces the events (seconds between two events); 0 writes the whole prebuilt body at once.

    ``usage=None`` estimates token counts from the request and the reply (about 4 chars a
    token); a :class:`Usage` or a raw dict is sent as given. ``usage_placement``: ``separate``
    (a last chunk with ``choices: []``, as OpenAI), ``finish`` (on the finish chunk) or ``every``
    (running counts on every chunk, as vLLM, the final figures on the finish chunk); usage is
    streamed only when the request asks with ``stream_options.include_usage``. ``model=None`` echoes the request's
    model. ``raw_sse`` serves exactly those body bytes instead (split into events at blank
    lines for pacing and faults); ``status`` and ``headers`` apply to every reply (``headers``
    can replace ``Content-Type``). ``framing`` is ``chunked`` (like real providers), ``length``
    (Content-Length) or ``close`` (body ends when the server closes the connection).
    """

    text: str = ""
    reasoning: str = ""
    reasoning_field: ReasoningField = "reasoning_content"
    tool_calls: Sequence[ToolCallSpec] = ()
    finish_reason: str | None = None
    usage: Usage | Mapping[str, Any] | None = None
    usage_placement: UsagePlacement = "separate"
    chunk_chars: int = 8
    chunking: Literal["chars", "words"] = "chars"
    delay: float = 0.0
    interleave_tool_calls: bool = False
    comment: str | None = None
    crlf: bool = False
    model: str | None = None
    response_id: str = "chatcmpl-tinyagent"
    fault: Fault | None = None
    raw_sse: bytes | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    framing: Framing = "chunked"
    # prebuilt bodies, keyed by what varies per request (model, usage, include_usage)
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.reasoning_field not in get_args(ReasoningField):
            raise ValueError(
                f"unknown reasoning_field {self.reasoning_field!r}; one of {get_args(ReasoningField)}"
            )
        if self.chunk_chars < 1:
            raise ValueError("Reply.chunk_chars must be >= 1")
        if self.chunking not in ("chars", "words"):
            raise ValueError("Reply.chunking must be 'chars' or 'words'")
        if self.delay < 0:
            raise ValueError("Reply.delay must be >= 0")
        if self.usage_placement not in get_args(UsagePlacement):
            raise ValueError(f"Reply.usage_placement must be one of {get_args(UsagePlacement)}")
        if self.framing not in get_args(Framing):
            raise ValueError(f"Reply.framing must be one of {get_args(Framing)}")
        if self.raw_sse is not None and not isinstance(self.raw_sse, bytes | bytearray):
            raise TypeError("Reply.raw_sse must be bytes")
        if not 100 <= self.status <= 599:
            raise ValueError(f"Reply.status must be an HTTP status, got {self.status}")
        calls = []
        for call in self.tool_calls:
            if isinstance(call, Mapping):
                call = ToolCallSpec(**call)
            if not isinstance(call, ToolCallSpec):
                raise TypeError("Reply.tool_calls must hold ToolCallSpec objects (or dicts)")
            calls.append(call)
        self.tool_calls = tuple(calls)
        if isinstance(self.fault, Mapping):
            self.fault = Fault(**self.fault)

    @classmethod
    def raw(cls, body: bytes | str, *, status: int = 200, content_type: str | None = None,
            headers: Mapping[str, str] | None = None, delay: float = 0.0) -> Reply:
        """Serve ``body`` byte-exact (e.g. a recorded SSE stream or error body) with ``status``;
        the ``Content-Type`` defaults to ``text/event-stream`` for 2xx, else ``application/json``."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        merged = dict(headers or {})
        if not any(name.lower() == "content-type" for name in merged):
            merged["Content-Type"] = content_type or (
                "text/event-stream; charset=utf-8" if 200 <= status < 300 else "application/json")
        return cls(raw_sse=data, status=status, headers=merged, delay=delay)

    @property
    def effective_finish_reason(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    @classmethod
    def coerce(cls, value: Any) -> Reply:
        """A brain's answer as a Reply: a Reply, a str (plain text) or a dict of fields."""
        if isinstance(value, Reply):
            return value
        if isinstance(value, str):
            return cls(text=value)
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise TypeError(
            f"a brain must return a Reply, a str or a dict of Reply fields, got {type(value).__name__}"
        )

    # -- serialization (scripted turns for a server in another process) --------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict; ``Reply.from_dict`` rebuilds an equal Reply."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "_cache":
                continue
            value = getattr(self, f.name)
            if f.name == "raw_sse" and value is not None:
                out["raw_sse_b64"] = base64.b64encode(bytes(value)).decode("ascii")
            elif f.name == "tool_calls":
                out[f.name] = [_dataclass_dict(c) for c in value]
            elif isinstance(value, Usage | Fault):
                out[f.name] = _dataclass_dict(value)
            elif isinstance(value, Mapping):
                out[f.name] = dict(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reply:
        known = {f.name for f in fields(cls)} - {"_cache"}
        kwargs = dict(data)
        if "raw_sse_b64" in kwargs:
            encoded = kwargs.pop("raw_sse_b64")
            kwargs["raw_sse"] = base64.b64decode(encoded) if encoded is not None else None
        unknown = set(kwargs) - known
        if unknown:
            raise ValueError(f"unknown Reply fields: {sorted(unknown)}")
        if isinstance(kwargs.get("usage"), Mapping) and kwargs["usage"].get("__usage__"):
            usage = dict(kwargs["usage"])
            usage.pop("__usage__")
            kwargs["usage"] = Usage(**usage)
        if isinstance(kwargs.get("fault"), Mapping):
            kwargs["fault"] = _fault_from_dict(kwargs["fault"])
        if "tool_calls" in kwargs:
            kwargs["tool_calls"] = [
                ToolCallSpec(**c) if isinstance(c, Mapping) else c for c in kwargs["tool_calls"]
            ]
        return cls(**kwargs)


def _dataclass_dict(obj: Usage | Fault | ToolCallSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    if isinstance(obj, Usage):
        out["__usage__"] = True
    return out


def _fault_from_dict(data: Mapping[str, Any]) -> Fault:
    return Fault(**dict(data))
