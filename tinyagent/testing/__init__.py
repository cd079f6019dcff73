"""Offline, deterministic model serving for tests, tutorials and benchmarks.

:class:`ModelServer` is a loopback OpenAI-compatible HTTP/1.1 server (``POST
/v1/chat/completions`` streaming and JSON, ``GET /v1/models``) that runs on a background thread,
or in its own process with :func:`spawn_server` / ``python -m tinyagent.testing``. What it
answers is decided by a *brain*:

- :class:`DemoBrain` (the default): the offline demo model of the tutorials: it calls the tools
  the prompt names, summarises their results, and otherwise quotes the prompt back;
- :class:`ScriptedBrain`: a list of turns consumed one per request, or a function of the request;
- :class:`ReplayBrain` / :class:`RecordingBrain`: serve a cassette of recorded provider traffic,
  or forward to a real provider and record one (``python -m tinyagent.testing --replay PATH``);
- any callable ``(request_json) -> Reply | str``.

A :class:`Reply` describes one response (text, reasoning and its wire field, :class:`ToolCallSpec`
tool calls, finish reason, :class:`Usage`, chunk size, pacing, exact ``raw_sse`` bytes), and a
:class:`Fault` bends it (HTTP errors, drops, stalls, malformed or in-band errors, byte-split
UTF-8, truncation, a JSON answer to a stream). Every request is recorded as a
:class:`RecordedRequest`, including whether the client hung up mid-response::

    from tinyagent.testing import Fault, ModelServer, Reply, ScriptedBrain, ToolCallSpec

    script = ScriptedBrain([
        Reply(fault=Fault.http(503, retry_after=1)),                  # first request fails
        Reply(text="Checking.", tool_calls=[ToolCallSpec("get_time", {"city": "Oslo"})]),
        Reply(text="It is noon in Oslo.", delay=0.01),                 # paced stream
    ])
    with ModelServer(script) as server:
        model_url = server.url       # http://127.0.0.1:<port>/v1/chat/completions
        ...                          # run the client against model_url
        assert server.requests[1].body["stream"] is True

    with ModelServer() as demo:      # the demo model, e.g. for the README quickstart
        ...

At a glance:

- ``ModelServer(brain=None, *, host="127.0.0.1", port=0)``: ``.start()`` / ``.stop()`` / ``with``;
  ``.url``, ``.base_url``, ``.port``; ``.requests`` (list of :class:`RecordedRequest`),
  ``.last_request``, ``.clear_requests()``, ``.wait_for_requests(count, timeout)``,
  ``.wait_for_disconnect(timeout, index=-1)``, ``.connection_count``; ``.brain`` can be swapped.
- ``spawn_server(brain="demo", *, port=0, max_seconds=600)`` (also ``ModelServer.spawn``) →
  :class:`SpawnedServer` with ``.url``, ``.base_url``, ``.port``, ``.pid``, ``.requests()``,
  ``.clear_requests()``, ``.stop()``.
- ``ScriptedBrain(turns | fn, *, when_exhausted="error" | "repeat")``: an exhausted script
  answers HTTP 500 naming the extra request (:class:`ScriptExhausted`) unless it repeats.
- ``Reply(text, reasoning, reasoning_field, tool_calls, finish_reason, usage, chunk_chars,
  chunking, delay, interleave_tool_calls, comment, crlf, model, fault, raw_sse, status, headers,
  framing)`` and ``Reply.raw(body, status=...)``; ``ToolCallSpec(name, arguments, id, fragments,
  fragment_chars, index, send_index, repeat_identity)``; ``Usage(prompt_tokens,
  completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost)``.
- ``Fault.http(status, message, retry_after=)``, ``.drop(after, reset=)``,
  ``.stall(after, seconds=None)``, ``.stall_before_headers(seconds=None)``, ``.malformed(after)``,
  ``.inband_error(after, message, code=, shape="openrouter"|"openai"|"vllm"|"minimax")``,
  ``.event_error(after, message)``, ``.multibyte_split()``, ``.truncate(after=None)``,
  ``.json_reply()``. ``after`` counts SSE events as sent, the role chunk included.

Server CLI: ``python -m tinyagent.testing --brain demo --port 0`` prints
``{"port": N, "url": ...}`` and serves until killed (``--max-seconds``, ``--script FILE``,
``--replay PATH``, ``--record PATH --upstream URL``).
"""

from ._brains import Brain, ScriptedBrain, ScriptExhausted
from ._cassette import CassetteMiss, RecordingBrain, ReplayBrain
from ._cassette_switch import cassette_brain as cassette_brain
from ._demo import DemoBrain
from ._log import Headers, RecordedRequest
from ._reply import Fault, Reply, ToolCallSpec, Usage
from ._server import ModelServer
from ._spawn import SpawnedServer, spawn_server
from .scripted import ScriptedStreamFn as ScriptedStreamFn

__all__ = [
    "Brain",
    "CassetteMiss",
    "DemoBrain",
    "Fault",
    "Headers",
    "ModelServer",
    "RecordedRequest",
    "RecordingBrain",
    "ReplayBrain",
    "Reply",
    "ScriptExhausted",
    "ScriptedBrain",
    "SpawnedServer",
    "ToolCallSpec",
    "Usage",
    "spawn_server",
]
