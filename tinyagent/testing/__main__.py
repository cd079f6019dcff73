"""``python -m tinyagent.testing``: run the loopback model server as its own process.

Prints one JSON line ``{"port": N, "url": ..., "base_url": ..., "pid": ...}`` on stdout once
listening, then serves until killed (SIGTERM/SIGINT) or ``--max-seconds`` have passed.

    python -m tinyagent.testing --brain demo --port 0
    python -m tinyagent.testing --script turns.json        # a ScriptedBrain from JSON
    python -m tinyagent.testing --brain mypkg.brains:make   # any importable brain or factory
    python -m tinyagent.testing --replay demo.jsonl         # serve a cassette
    python -m tinyagent.testing --record demo.jsonl --upstream URL --api-key-env OPENROUTER_API_KEY
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import signal
import sys
import threading
from typing import Any

from ._brains import ScriptedBrain
from ._cassette import RecordingBrain, ReplayBrain
from ._demo import DemoBrain
from ._server import ModelServer


def _load_brain(args: argparse.Namespace) -> Any:
    if args.replay:
        return ReplayBrain(args.replay)
    if args.record:
        if not args.upstream:
            raise SystemExit("--record needs --upstream URL (the real chat endpoint)")
        key = os.environ.get(args.api_key_env) if args.api_key_env else None
        return RecordingBrain(args.record, args.upstream, api_key=key)
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            data = json.load(f)
        if isinstance(data, list):
            data = {"turns": data}
        return ScriptedBrain.from_dict(data)
    if args.brain == "demo":
        return DemoBrain(delay=args.delay)
    module_name, sep, attribute = args.brain.partition(":")
    if not sep or not attribute:
        raise SystemExit(f"--brain must be 'demo' or 'module:attribute', got {args.brain!r}")
    target = getattr(importlib.import_module(module_name), attribute)
    # a class or a factory taking no arguments is called once to make the brain; anything
    # else (a brain object, a function of the request) is the brain itself
    if isinstance(target, type) or (callable(target) and _takes_no_arguments(target)):
        return target()
    return target


def _takes_no_arguments(function: Any) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                   for p in parameters)


def _raise_file_limit() -> None:
    """Many concurrent test streams need more descriptors than the usual soft limit."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyagent.testing",
                                     description="Loopback OpenAI-compatible model server.")
    parser.add_argument("--brain", default="demo",
                        help="'demo' (default) or 'module:attribute' naming a brain or brain class")
    parser.add_argument("--script", help="JSON file: a list of Reply dicts, or "
                                         "{'turns': [...], 'when_exhausted': 'error'|'repeat'}")
    parser.add_argument("--replay", help="serve this cassette (JSONL); unknown requests fail")
    parser.add_argument("--record", help="forward to --upstream and append to this cassette")
    parser.add_argument("--upstream", help="with --record: the real chat completions URL")
    parser.add_argument("--api-key-env", help="with --record: environment variable of the key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0,
                        help="demo brain: seconds between streamed events")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop by itself after this long (default: run until killed)")
    args = parser.parse_args(argv)
    _raise_file_limit()
    server = ModelServer(_load_brain(args), host=args.host, port=args.port).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps({"port": server.port, "url": server.url, "base_url": server.base_url,
                      "pid": os.getpid()}), flush=True)
    try:
        stop.wait(args.max_seconds)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
