"""The loopback server as its own process, and under many concurrent paced streams."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
from support.sse_reader import assemble, parse_sse

from tinyagent.testing import Fault, ModelServer, Reply, ScriptedBrain, spawn_server

REQUEST = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
           "messages": [{"role": "user", "content": "Hello from a test"}]}


def test_module_cli_prints_port_json_and_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tinyagent.testing", "--brain", "demo", "--port", "0"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["url"] == f"http://127.0.0.1:{info['port']}/v1/chat/completions"
        response = httpx.post(info["url"], json=REQUEST, timeout=3.0)
        result = assemble(parse_sse(response.content))
        assert "> Hello from a test" in result.text and result.usage is not None
        log = httpx.get(f"http://127.0.0.1:{info['port']}/_requests", timeout=3.0).json()
        assert log[0]["body"]["messages"] == REQUEST["messages"]
    finally:
        process.terminate()
        assert process.wait(3.0) == 0
        if process.stdout is not None:
            process.stdout.close()


def test_spawn_server_with_a_scripted_brain_and_remote_log() -> None:
    script = ScriptedBrain([Reply(fault=Fault.http(429, retry_after=1)),
                            Reply(text="after retry")])
    with spawn_server(script) as server:
        assert server.url.endswith("/v1/chat/completions") and server.pid > 0
        first = httpx.post(server.url, json=REQUEST, timeout=3.0)
        second = httpx.post(server.url, json=REQUEST, timeout=3.0)
        log = server.requests()
        server.clear_requests()
        assert server.requests() == []
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    assert assemble(parse_sse(second.content)).text == "after retry"
    assert [entry["status"] for entry in log] == [429, 200]
    assert server.process.poll() is not None  # stopped and reaped


def test_spawn_server_by_import_path_and_max_seconds() -> None:
    server = ModelServer.spawn("tinyagent.testing._demo:DemoBrain", max_seconds=0.5)
    try:
        response = httpx.post(server.url, json=REQUEST, timeout=3.0)
        assert "offline demo model" in assemble(parse_sse(response.content)).text
        assert server.process.wait(3.0) == 0  # it stopped by itself
    finally:
        server.stop()


def test_two_hundred_concurrent_paced_streams_all_complete() -> None:
    text = "".join(f"w{i:02d} " for i in range(20))
    reply = Reply(text=text, chunk_chars=4, delay=0.02)

    async def run(url: str) -> list[str]:
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
        async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
            async def one() -> str:
                response = await client.post(url, json=REQUEST)
                return assemble(parse_sse(response.content)).text
            return await asyncio.gather(*(one() for _ in range(200)))

    with ModelServer(reply) as server:
        texts = asyncio.run(run(server.url))
        records = server.requests
    assert texts == [text] * 200
    assert len(records) == 200 and all(r.response_complete.is_set() for r in records)
    # the streams overlapped: many connections were open at once
    assert len({r.connection_id for r in records}) > 50
