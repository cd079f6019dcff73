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

Server CLI: ``python -m tinyagent.testing --brain demo --port 0`` prints
``{"port": N, "url": ...}`` and serves until killed.
"""

from ._brains import Brain, ScriptedBrain, ScriptExhausted
from ._cassette import CassetteMiss, RecordingBrain, ReplayBrain
from ._demo import DemoBrain
from ._log import Headers, RecordedRequest
from ._reply import Fault, Reply, ToolCallSpec, Usage
from ._server import ModelServer
from ._spawn import SpawnedServer, spawn_server

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
