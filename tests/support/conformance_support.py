"""The conformance corpus (``tests/data/conformance/``, docs/wire.md#conformance): loading the
recorded cases, serving them from the loopback server, and comparing what the streaming core made
of them with ``expected``.

The corpus is the product of an independent accumulator cross-checked against the official
``openai`` SDK; it is the oracle. What this module adds is the mapping from the oracle's terms to
the final assistant message (docs/architecture.md#core-surface), following docs/wire.md:

- text = ``content`` + ``refusal`` (docs/wire.md#chunks: a refusal is text), summed over the text
  blocks;
- reasoning = ``reasoning_text``, with the wire field in ``thinking_signature``
  (docs/wire.md#reasoning-fields);
- tool calls: id, name, parsed arguments; ``partial_json`` only for unparseable non-empty
  arguments (docs/wire.md#tool-calls: an empty string gives ``{}``);
- stop reason from ``finish_reason`` (docs/wire.md#stop-reasons); usage by the mapping of
  docs/wire.md#usage;
- in-band errors ``provider error <code>: <message>`` (docs/wire.md#in-band-errors); HTTP
  errors ``HTTP <status> <reason>: <detail>`` (docs/wire.md#error-messages).

Deliberate departures from ``expected`` (docs/wire.md#departures) are listed in :data:`DEPARTURES`
with their reason and asserted as departures, so a change of behaviour on them fails as loudly as
any other.
"""

from __future__ import annotations

import gzip
import http
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tinyagent.testing import Reply

#: Part of the repository, so a clone tests itself (origins and licences: SOURCES.md beside it).
CORPUS = Path(__file__).resolve().parents[1] / "data" / "conformance" / "streams.jsonl.gz"

TRUNCATED_MESSAGE = "stream ended before completion (no finish_reason and no [DONE])"
CONTEXT_OVERFLOW_PREFIX = "context window exceeded: "


@dataclass(frozen=True)
class Departure:
    """A case where this project deliberately differs from ``expected``
    (docs/wire.md#departures)."""

    kind: str  # "malformed_trailing_event" | "truncated_stream"
    reason: str


_TRUNCATED_REASON = (
    "the body ends with neither finish_reason nor [DONE]; docs/wire.md#stop-reasons makes that the "
    "truncated-stream error with the text kept, where expected reports a success"
)

DEPARTURES: dict[str, Departure] = {
    "huggingface-huggingface-js--tapes-b3cad22ff43c9ca5--i0": Departure(
        "malformed_trailing_event",
        "Cerebras: the last event lacks its closing blank line. docs/wire.md#sse-framing "
        "dispatches it anyway (strict WHATWG, which expected follows, drops it), and its data is "
        "invalid JSON (a stray quote), so the stream ends with a malformed-data error instead of "
        "a success without finish_reason; the text before it is kept",
    ),
    "crmne-ruby-llm--chat-with-extended-thinking-gpustack-qwen3-streams-thinking-content-when-"
    "available--i0": Departure(
        "truncated_stream", "GPUStack stops after a non-standard `error:` line: " + _TRUNCATED_REASON
    ),
    "crmne-ruby-llm--chat-with-extended-thinking-gpustack-qwen3-streams-thinking-content-when-"
    "available--i0--c7939add": Departure(
        "truncated_stream", "GPUStack stops after a non-standard `error:` line: " + _TRUNCATED_REASON
    ),
    "pydantic-pydantic-ai--test-clean-eof-without-finish-reason-is-accepted-by-default--i0":
        Departure("truncated_stream", "pydantic-ai's clean-EOF fixture: " + _TRUNCATED_REASON),
}

# The error wordings in this corpus that alchemy-llm's `is_context_overflow` recognises;
# docs/wire.md#error-messages prefixes exactly those with "context window exceeded: ". Two more
# recorded context-length errors ("prompt too long; exceeded max context length" from Ollama Cloud,
# "The total length of all messages is too long." from Perplexity) use wordings it does not know, so
# they keep the plain HTTP message.
_CONTEXT_OVERFLOW_WORDINGS = re.compile(
    r"maximum context length is \d+ tokens|maximum prompt length is \d+|"
    r"reduce the length of the messages",
    re.IGNORECASE,
)


@cache
def load_cases() -> tuple[dict[str, Any], ...]:
    """Every case of the corpus, in file order (read once per process)."""
    with gzip.open(CORPUS, "rt", encoding="utf-8") as lines:
        return tuple(json.loads(line) for line in lines if line.strip())


@cache
def cases_by_id() -> dict[str, dict[str, Any]]:
    by_id = {case["id"]: case for case in load_cases()}
    if len(by_id) != len(load_cases()):
        raise ValueError("conformance corpus: duplicate case ids")
    return by_id


def asks_for_several_choices(case: dict[str, Any]) -> bool:
    """The request had ``n > 1``. The three OpenAI recordings with interleaved choices 0, 1 and 2
    were made with ``n = 3`` but their recorder kept no request body; the oracle's
    ``multiple_choices`` feature marks them (docs/wire.md#conformance)."""
    n = (case.get("request_body") or {}).get("n")
    return (isinstance(n, int) and n > 1) or "multiple_choices" in case["expected"]["features"]


def reply_for(case: dict[str, Any]) -> Reply:
    """The recorded response, byte-exact, with its status and content type. A missing content
    type becomes the server's default (``text/event-stream`` for 2xx): the core reads any 2xx body
    that is not ``application/json`` as SSE (docs/wire.md#sse-framing), so the two are the same to
    it."""
    body = case["sse_body"] if case["kind"] == "stream" else case.get("error_body")
    content_type = (case.get("response_headers") or {}).get("content-type")
    return Reply.raw(body or b"", status=case["status"], content_type=content_type)


# -- what the final message should be ------------------------------------------------------------

def http_error_detail(body: str) -> str:
    """docs/wire.md#error-messages: ``error.message`` of a JSON body (a string ``error`` and a
    top-level ``message`` count too), else the first 1000 characters of the body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, str):
            return error[:1000]
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:1000]
        if isinstance(parsed.get("message"), str):
            return str(parsed["message"])[:1000]
    return body.strip()[:1000]


def expected_http_error_message(case: dict[str, Any]) -> str:
    status = case["status"]
    head = f"HTTP {status} {http.HTTPStatus(status).phrase}"
    detail = http_error_detail(case.get("error_body") or "")
    message = f"{head}: {detail}" if detail else head
    if _CONTEXT_OVERFLOW_WORDINGS.search(detail):
        message = CONTEXT_OVERFLOW_PREFIX + message
    return message


def expected_inband_error_message(error: dict[str, Any]) -> str:
    """``provider error <code>: <message>``, or ``provider error: <message>``
    (docs/wire.md#in-band-errors)."""
    body = error.get("body")
    code = body.get("code") if isinstance(body, dict) else None
    message = error["message"]
    return f"provider error {code}: {message}" if code is not None else f"provider error: {message}"


def expected_stop_reason(finish_reason: str | None, has_tool_calls: bool) -> str:
    """docs/wire.md#stop-reasons for a stream that ended normally."""
    natural = "tool_calls" if has_tool_calls else "stop"
    if finish_reason in ("length", "max_tokens"):
        return "length"
    if finish_reason in ("tool_calls", "function_call"):
        return "tool_calls"
    return natural  # stop and its synonyms, unknown values, and no finish_reason before [DONE]


# -- comparison -----------------------------------------------------------------------------------

def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [block for block in message["content"] if block["type"] == kind]


def _text(message: dict[str, Any]) -> str:
    return "".join(block["text"] for block in _blocks(message, "text"))


def _thinking(message: dict[str, Any]) -> str:
    return "".join(block["thinking"] for block in _blocks(message, "thinking"))


class _Diffs:
    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, what: str, got: Any, want: Any) -> None:
        if got != want:
            self.items.append(f"{what}: got {got!r}, expected {want!r}")

    def add(self, note: str) -> None:
        self.items.append(note)


def _compare_usage(diffs: _Diffs, usage: dict[str, Any], want: dict[str, Any] | None) -> None:
    if want is None:
        # nothing was sent (or it came after an in-band error, which ends the stream): a
        # complete all-zero usage (docs/wire.md#usage)
        diffs.check("usage", usage, {
            "input": 0, "output": 0, "cache_read": 0, "cache_write": 0, "total_tokens": 0,
            "cost": {"input": 0.0, "output": 0.0, "cache_read": 0.0, "cache_write": 0.0,
                     "total": 0.0}})
        return
    prompt = want.get("prompt_tokens")
    completion = want.get("completion_tokens")
    diffs.check("usage.input", usage["input"], prompt if prompt is not None else 0)
    diffs.check("usage.output", usage["output"], completion if completion is not None else 0)
    total = want.get("total_tokens")
    diffs.check("usage.total_tokens", usage["total_tokens"],
                total if total is not None else usage["input"] + usage["output"])
    # The oracle records only `prompt_tokens_details.cached_tokens`; `cache_read_input_tokens` takes
    # precedence over it (docs/wire.md#usage), so cache_read is compared only where it is the
    # sole source.
    if "cache_read_input_tokens" not in (want.get("other_keys") or []):
        cached = want.get("cached_tokens")
        diffs.check("usage.cache_read", usage["cache_read"], cached if cached is not None else 0)
    if "cost" not in (want.get("other_keys") or []) and "cost_details" not in (
            want.get("other_keys") or []):
        diffs.check("usage.cost.total", usage["cost"]["total"], 0.0)


def _compare_tool_calls(diffs: _Diffs, message: dict[str, Any], want: list[dict[str, Any]],
                        ended_in_error: bool) -> None:
    got = _blocks(message, "tool_call")
    if len(got) != len(want):
        diffs.add(f"{len(got)} tool calls, expected {len(want)}: "
                  f"{[(c['id'], c['name']) for c in got]}")
        return
    seen_ids: set[str] = set()
    for n, (call, wanted) in enumerate(zip(got, want, strict=True)):
        where = f"tool_calls[{n}]"
        if wanted.get("id"):
            diffs.check(f"{where}.id", call["id"], wanted["id"])
        elif not (isinstance(call["id"], str) and call["id"].startswith("call_")):
            diffs.add(f"{where}.id: no id was sent, so a synthesized call_<n> was expected, "
                      f"got {call['id']!r}")
        if call["id"] in seen_ids:
            diffs.add(f"{where}.id {call['id']!r} repeats an earlier call's id")
        seen_ids.add(call["id"])
        diffs.check(f"{where}.name", call["name"], wanted.get("name") or "")
        raw = wanted.get("arguments") or ""
        parsed = wanted.get("arguments_parsed")
        unparseable = raw.strip() != "" and not isinstance(parsed, dict)
        diffs.check(f"{where}.arguments", call["arguments"],
                    parsed if isinstance(parsed, dict) else {})
        if unparseable or ended_in_error:
            # an error message ends its open calls with their raw text (docs/wire.md#lifecycle)
            diffs.check(f"{where}.partial_json", call.get("partial_json"), raw)
        else:
            diffs.check(f"{where}.partial_json", call.get("partial_json"), None)


def _compare_content(diffs: _Diffs, message: dict[str, Any], expected: dict[str, Any]) -> None:
    want_text = (expected.get("content") or "") + (expected.get("refusal") or "")
    diffs.check("text", _text(message), want_text)
    diffs.check("reasoning", _thinking(message), expected.get("reasoning_text") or "")
    field = expected.get("reasoning_field")
    allowed = {field} if isinstance(field, str) else set(field or ())
    for block in _blocks(message, "thinking"):
        if block["thinking_signature"] not in allowed:
            diffs.add(f"thinking_signature {block['thinking_signature']!r} not in {allowed}")
    for block in _blocks(message, "text"):
        diffs.check("text_signature", block.get("text_signature"), None)
    # blocks open on the first non-empty fragment (docs/wire.md#lifecycle): no empty text or
    # thinking block
    for block in message["content"]:
        if block["type"] in ("text", "thinking") and not block[block["type"]]:
            diffs.add(f"empty {block['type']} block")


def _compare_events(diffs: _Diffs, events: list[dict[str, Any]], message: dict[str, Any],
                    expected: dict[str, Any]) -> None:
    """What a live consumer sees adds up to the final message: per block, the deltas joined equal
    the block's text (a tool call's: its raw argument text), and each ``*_end`` repeats it."""
    deltas: dict[int, list[str]] = {}
    for event in events:
        if event["type"].endswith("_delta"):
            deltas.setdefault(event["content_index"], []).append(event["delta"])
        elif event["type"] in ("text_end", "thinking_end"):
            block = message["content"][event["content_index"]]
            diffs.check(f"{event['type']}[{event['content_index']}].content", event["content"],
                        block[block["type"]])
    raw_arguments = iter(call.get("arguments") or "" for call in expected.get("tool_calls") or [])
    for index, block in enumerate(message["content"]):
        joined = "".join(deltas.get(index, []))
        if block["type"] == "tool_call":
            diffs.check(f"tool_call_delta[{index}] joined", joined, next(raw_arguments, None))
        else:
            diffs.check(f"{block['type']}_delta[{index}] joined", joined, block[block["type"]])


def _compare_terminal(diffs: _Diffs, case: dict[str, Any], message: dict[str, Any]) -> None:
    expected = case["expected"]
    departure = DEPARTURES.get(case["id"])
    error = expected.get("error")
    if case["kind"] != "stream":
        diffs.check("stop_reason", message["stop_reason"], "error")
        diffs.check("error_message", message["error_message"], expected_http_error_message(case))
    elif error:
        diffs.check("stop_reason", message["stop_reason"], "error")
        diffs.check("error_message", message["error_message"],
                    expected_inband_error_message(error))
    elif departure is not None and departure.kind == "truncated_stream":
        diffs.check("stop_reason (departure)", message["stop_reason"], "error")
        diffs.check("error_message (departure)", message["error_message"], TRUNCATED_MESSAGE)
    elif departure is not None and departure.kind == "malformed_trailing_event":
        diffs.check("stop_reason (departure)", message["stop_reason"], "error")
        if not str(message["error_message"]).startswith("malformed stream data: "):
            diffs.add(f"departure: a malformed-data error was expected, got "
                      f"{message['error_message']!r}")
    else:
        want = expected_stop_reason(expected.get("finish_reason"),
                                    bool(expected.get("tool_calls")))
        diffs.check("stop_reason", message["stop_reason"], want)
        diffs.check("error_message", message["error_message"], None)


def compare(case: dict[str, Any], outcome: dict[str, Any]) -> list[str]:
    """Every difference between the core's result for ``case`` and ``expected`` (empty: it
    matches, departures included)."""
    diffs = _Diffs()
    events = outcome["events"]
    message = outcome["final_message"]
    terminals = [e for e in events if e["type"] in ("done", "error")]
    if len(terminals) != 1 or events[-1] is not terminals[0]:
        diffs.add(f"expected exactly one terminal event, last; got {[e['type'] for e in events]}")
        return diffs.items
    terminal = terminals[0]
    diffs.check("terminal event carries the final message",
                terminal.get("message") if terminal["type"] == "done" else terminal.get("error"),
                message)
    diffs.check("model", message["model"], case["id"])
    diffs.check("api", message["api"], "openai-completions")
    expected = case["expected"]
    if case["kind"] == "stream":
        _compare_content(diffs, message, expected)
        _compare_tool_calls(diffs, message, expected.get("tool_calls") or [],
                            ended_in_error=message["stop_reason"] == "error")
        _compare_events(diffs, events, message, expected)
    else:
        diffs.check("content of an HTTP error", message["content"], [])
        diffs.check("events of an HTTP error", [e["type"] for e in events], ["error"])
    _compare_terminal(diffs, case, message)
    _compare_usage(diffs, message["usage"], expected.get("usage") if case["kind"] == "stream"
                   else None)
    return diffs.items


# -- summary --------------------------------------------------------------------------------------

def corpus_counts() -> dict[str, int]:
    cases = load_cases()
    return {
        "cases": len(cases),
        "streams": sum(case["kind"] == "stream" for case in cases),
        "http_errors": sum(case["kind"] != "stream" for case in cases),
        "several_choices": sum(asks_for_several_choices(case) for case in cases),
        "sdk_failed": sum(case["expected"]["sdk"]["status"] == "failed" for case in cases),
        "sdk_wrong": sum("sdk_disagrees" in case["expected"]["features"] for case in cases),
    }


def departure_lines() -> Iterator[tuple[str, str]]:
    """``(case id, printable line)`` for each departure."""
    for case_id, departure in DEPARTURES.items():
        yield case_id, f"{case_id} [{departure.kind}]: {departure.reason}"
