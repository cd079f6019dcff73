"""Record/replay through the loopback server: byte-exact bodies, loud misses, no stored keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.sse_reader import assemble, parse_sse

from tinyagent.testing import (
    CassetteMiss,
    DemoBrain,
    Fault,
    ModelServer,
    RecordingBrain,
    ReplayBrain,
    Reply,
)

SECRET = "sk-test-very-secret-key"


def request(content: str, **extra: object) -> dict[str, object]:
    return {"model": "demo", "stream": True, "messages": [{"role": "user", "content": content}],
            **extra}


def test_record_then_replay_byte_exact(tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    with ModelServer(DemoBrain()) as upstream:
        recorder = RecordingBrain(cassette, upstream.url, api_key=SECRET)
        with ModelServer(recorder) as recording:
            live = httpx.post(recording.url, json=request("hello"), timeout=3.0)
        sent = upstream.requests[0]
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert live.status_code == 200
    assert "offline demo model" in assemble(parse_sse(live.content)).text
    assert recorder.recorded == 1

    brain = ReplayBrain(cassette)
    with ModelServer(brain) as replay:
        # volatile fields (session id, stream_options) do not change the key
        again = httpx.post(replay.url, timeout=3.0, json=request(
            "hello", session_id="another-run", stream_options={"include_usage": True}))
        miss = httpx.post(replay.url, json=request("something new"), timeout=3.0)
    assert again.content == live.content
    assert again.headers["content-type"].startswith("text/event-stream")
    assert miss.status_code == 500
    assert "CassetteMiss" in miss.json()["error"]["message"]
    assert str(cassette) in miss.json()["error"]["message"]
    assert len(brain.misses) == 1


def test_keys_are_scrubbed_and_errors_recorded(tmp_path: Path) -> None:
    cassette = tmp_path / "errors.jsonl"
    upstream_brain = [Reply(text=f"your key is {SECRET}"),
                      Reply(fault=Fault.http(429, f"key {SECRET} is rate limited"))]
    with ModelServer(upstream_brain) as upstream, ModelServer(
            RecordingBrain(cassette, upstream.url, api_key=SECRET)) as recording:
        first = httpx.post(recording.url, json=request("a"), timeout=3.0)
        second = httpx.post(recording.url, json=request("b"), timeout=3.0)
    stored = cassette.read_text(encoding="utf-8")
    assert SECRET not in stored and SECRET.encode() not in first.content + second.content
    entries = [json.loads(line) for line in stored.splitlines()]
    assert [e["status"] for e in entries] == [200, 429]
    assert entries[0]["request"]["messages"][0]["content"] == "a"
    with ModelServer(ReplayBrain(cassette)) as replay:
        replayed = httpx.post(replay.url, json=request("b"), timeout=3.0)
    assert replayed.status_code == 429 and replayed.content == second.content


def test_repeated_requests_replay_in_order(tmp_path: Path) -> None:
    cassette = tmp_path / "twice.jsonl"
    with ModelServer(["one", "two"]) as upstream, ModelServer(
            RecordingBrain(cassette, upstream.url)) as recording:
        bodies = [httpx.post(recording.url, json=request("same"), timeout=3.0).content
                  for _ in range(2)]
    brain = ReplayBrain(cassette)
    assert len(brain) == 2
    replies = [brain(request("same")) for _ in range(3)]
    assert [r.raw_sse for r in replies] == [bodies[0], bodies[1], bodies[1]]
    with pytest.raises(CassetteMiss):
        brain(request("other"))


def test_bad_cassettes_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="record it first"):
        ReplayBrain(tmp_path / "missing.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"key": "k"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="broken.jsonl:1"):
        ReplayBrain(broken)
    with pytest.raises(ValueError, match="http"):
        RecordingBrain(broken, "ftp://example")


def test_cli_replay(tmp_path: Path) -> None:
    cassette = tmp_path / "cli.jsonl"
    with ModelServer(DemoBrain()) as upstream, ModelServer(
            RecordingBrain(cassette, upstream.url)) as recording:
        live = httpx.post(recording.url, json=request("from the CLI"), timeout=3.0).content
    process = subprocess.Popen([sys.executable, "-m", "tinyagent.testing", "--replay",
                                str(cassette)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = json.loads(process.stdout.readline())["url"]
        assert httpx.post(url, json=request("from the CLI"), timeout=3.0).content == live
    finally:
        process.terminate()
        process.wait(3.0)
        if process.stdout is not None:
            process.stdout.close()
