"""``tinyagent.batch`` when rows go wrong or must go slower, against the loopback ModelServer:
``output_type`` (JSON schema request, fenced JSON, the repair turn, a row error), transient and
permanent failures, ``max_failures``, a 429's Retry-After pausing the whole batch, and the
requests/tokens-per-minute limiter, all measured on the server's request log."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydantic import BaseModel
from support.batch_support import last_user, make_agent

from tinyagent import run_batch
from tinyagent.batch._runner import is_transient
from tinyagent.testing import Fault, ModelServer, Reply, Usage

pytestmark = pytest.mark.timeout(60)


def warm_up(server: ModelServer) -> None:
    """One request first: the process's HTTP client is made on first use (tens of ms), which
    would blur the first gap a timing test measures on the server's log."""
    run_batch(make_agent(server.url), ["warm-up"], progress=False)
    server.clear_requests()


class Label(BaseModel):
    label: str
    score: float


class PerRow:
    """A brain answering by the row's prompt: ``script[prompt]`` is the list of replies for that
    row's successive requests (the last one repeats); other prompts get ``default``."""

    def __init__(self, script: dict[str, list[Any]], default: Any = "ok") -> None:
        self.script = script
        self.default = default
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def key(self, request: dict[str, Any]) -> str:
        return request["messages"][0]["content"]  # the row's own prompt: the first user message

    def __call__(self, request: dict[str, Any]) -> Any:
        key = self.key(request)
        with self.lock:
            n = self.seen.get(key, 0)
            self.seen[key] = n + 1
        replies = self.script.get(key.split("\n")[0])
        if replies is None:
            return self.default
        return replies[min(n, len(replies) - 1)]


# -- output_type ---------------------------------------------------------------------------------


def test_output_type_asks_for_json_schema_and_parses_a_fenced_answer():
    answer = 'Here you go:\n```json\n{"label": "spam", "score": 0.9}\n```'
    with ModelServer(PerRow({}, default=answer)) as server:
        result = run_batch(make_agent(server.url), ["buy now!!!", "hello mum"],
                           prompt="Classify: {}", output_type=Label, progress=False)
        body = server.requests[0].body
    assert result.outputs == [Label(label="spam", score=0.9)] * 2
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Label"
    assert fmt["json_schema"]["schema"]["required"] == ["label", "score"]
    assert "JSON object only" in last_user(body)
    assert all(row.attempts == 1 for row in result)


def test_without_response_format_the_schema_goes_in_the_prompt():
    answer = '{"label": "ham", "score": 0.1}'
    with ModelServer(PerRow({}, default=answer)) as server:
        agent = make_agent(server.url, extra_body={"response_format": None})
        result = run_batch(agent, ["hello"], output_type=Label, progress=False)
        body = server.requests[0].body
    assert result[0].output == Label(label="ham", score=0.1)
    assert "response_format" not in body
    assert '"properties"' in last_user(body) and '"score"' in last_user(body)


def test_an_invalid_answer_gets_one_repair_turn_on_the_same_agent():
    brain = PerRow({"fix me": ['{"label": "spam"}', '{"label": "spam", "score": 0.5}']},
                   default='{"label": "ok", "score": 1}')
    with ModelServer(brain) as server:
        result = run_batch(make_agent(server.url), ["fix me", "fine"], output_type=Label,
                           progress=False)
        repair = [r.body for r in server.requests if len(r.body["messages"]) > 1]
    assert result.outputs == [Label(label="spam", score=0.5), Label(label="ok", score=1)]
    assert result[0].attempts == 1
    assert result[0].usage["total_tokens"] > result[1].usage["total_tokens"]  # two turns
    assert len(repair) == 1
    roles = [m["role"] for m in repair[0]["messages"]]
    assert roles == ["user", "assistant", "user"]  # the same conversation, one more turn
    assert "score: Field required" in last_user(repair[0])
    assert "did not match the required JSON schema (Label)" in last_user(repair[0])


def test_an_answer_still_invalid_after_the_repair_is_a_row_error_not_an_exception():
    brain = PerRow({"hopeless": ["no JSON here", "still none"]},
                   default='{"label": "ok", "score": 1}')
    with ModelServer(brain) as server:
        result = run_batch(make_agent(server.url), ["hopeless", "fine"], output_type=Label,
                           progress=False)
        assert len(server.requests) == 3
    assert result[0].output is None
    assert result[0].error.startswith("output did not match Label after a repair turn")
    assert "Invalid JSON" in result[0].error
    assert result[1].output == Label(label="ok", score=1)
    assert result.counts["failed"] == 1 and result.errors == [result[0]]


# -- transient and permanent failures -------------------------------------------------------------


def test_a_transient_500_is_retried_on_a_fresh_agent_then_succeeds():
    brain = PerRow({"flaky": [Reply(fault=Fault.http(500)), "recovered"]})
    with ModelServer(brain) as server:
        result = run_batch(make_agent(server.url), ["flaky", "steady"], progress=False)
        flaky = [r for r in server.requests if last_user(r.body) == "flaky"]
    assert result.outputs == ["recovered", "ok"]
    assert result[0].attempts == 2 and result[1].attempts == 1
    assert [r.status for r in flaky] == [500, 200]
    assert len(flaky[1].body["messages"]) == 1  # a fresh agent: no trace of the failed try
    assert flaky[1].received_at - flaky[0].received_at >= 0.25  # back-off 0.5 s ± 20 %


def test_a_permanent_401_is_not_retried_and_does_not_stop_the_batch():
    brain = PerRow({"denied": [Reply(fault=Fault.http(401))]})
    with ModelServer(brain) as server:
        result = run_batch(make_agent(server.url), ["denied", "a", "b"], progress=False)
        assert len(server.requests) == 3
    assert result[0].error.startswith("HTTP 401") and result[0].attempts == 1
    assert result.outputs == [None, "ok", "ok"]
    assert result.stopped is None


def test_transient_failures_stop_after_max_attempts():
    brain = PerRow({"down": [Reply(fault=Fault.http(503))]})
    with ModelServer(brain) as server:
        result = run_batch(make_agent(server.url), ["down"], max_attempts=2, progress=False)
        assert len(server.requests) == 2  # the core's own retries count as attempts
    assert result[0].attempts == 2 and "HTTP 503" in result[0].error


def test_transient_or_permanent():
    for text in ("HTTP 500 Internal Server Error: x", "HTTP 429 Too Many Requests",
                 "HTTP 503 Service Unavailable (after 2 retries)",
                 "connection to http://127.0.0.1:9 failed: Connection refused (os error 111)",
                 "no response from api.openai.com within 300s (first-byte timeout)",
                 "stream idle for 120s (idle timeout)", "stream interrupted: reset",
                 "provider error 502: upstream"):
        assert is_transient(text), text
    for text in ("HTTP 400 Bad Request: overloaded words", "HTTP 401 Unauthorized",
                 "HTTP 404 Not Found", "failed to start openai-completions stream: nope",
                 "provider error 400: bad", "malformed stream data: x"):
        assert not is_transient(text), text


def test_max_failures_stops_scheduling_after_that_many_failed_rows():
    with ModelServer(Reply(fault=Fault.http(401))) as server:
        result = run_batch(make_agent(server.url), [f"q{i}" for i in range(10)], concurrency=1,
                           max_failures=3, progress=False)
        assert len(server.requests) == 3
    assert result.stopped == "max_failures"
    assert [row.status for row in result] == ["failed"] * 3 + ["not_run"] * 7
    assert {row.error for row in result[3:]} == {"not run: max_failures"}
    assert result.counts == {"done": 0, "cached": 0, "failed": 3, "not_run": 7}
    assert "stopped: max_failures" in repr(result)


# -- rate limits ----------------------------------------------------------------------------------


def test_a_429_with_retry_after_pauses_every_new_request_of_the_batch():
    brain = PerRow({"q0": [Reply(fault=Fault.http(429, retry_after=1)), "ok"]},
                   default=Reply(text="ok", delay=0.02, chunk_chars=1))  # about 0.1 s a row
    with ModelServer(brain) as server:
        result = run_batch(make_agent(server.url), [f"q{i}" for i in range(12)], concurrency=4,
                           progress=False)
        requests = list(server.requests)
    assert result.outputs == ["ok"] * 12
    assert result[0].attempts == 2  # the core's own retry after the Retry-After
    limited = next(r for r in requests if r.status == 429)
    t0 = limited.received_at
    retry = [r for r in requests if last_user(r.body) == "q0" and r is not limited]
    assert len(retry) == 1 and retry[0].received_at - t0 >= 0.9
    # rows 4.. can only start once a row of the first wave is done (about 0.1 s in): without the
    # pause they would go out at once; with it, none before the Retry-After is over
    later = [r.received_at - t0 for r in requests if int(last_user(r.body)[1:]) >= 4]
    assert len(later) == 8 and min(later) >= 0.9, later


def test_a_429_after_the_cores_retries_are_spent_backs_off_and_retries_the_row():
    brain = PerRow({"limited": [Reply(fault=Fault.http(429)), "through"]})
    with ModelServer(brain) as server:
        result = run_batch(make_agent(server.url, max_retries=0), ["limited", "other"],
                           concurrency=1, progress=False)
        times = [r.received_at for r in server.requests]
    assert result.outputs == ["through", "ok"]
    assert result[0].attempts == 2
    assert times[1] - times[0] >= 0.25  # the back-off, 0.5 s ± 20 %


def test_requests_per_minute_spaces_the_requests():
    with ModelServer("ok") as server:
        warm_up(server)
        result = run_batch(make_agent(server.url), [f"q{i}" for i in range(6)], concurrency=6,
                           requests_per_minute=600, progress=False)  # one per 0.1 s
        times = sorted(r.received_at for r in server.requests)
    assert result.outputs == ["ok"] * 6
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    assert times[-1] - times[0] >= 0.4, gaps  # five intervals of 0.1 s
    assert gaps[len(gaps) // 2] >= 0.07, gaps  # spaced, not in bursts


def test_tokens_per_minute_holds_requests_while_the_bucket_is_overdrawn():
    big = Reply(text="ok", usage=Usage(prompt_tokens=60_000, completion_tokens=500))
    with ModelServer(big) as server:  # 1,000 tokens/s; the first row overdraws the bucket by 500
        warm_up(server)
        result = run_batch(make_agent(server.url), ["a", "b"], concurrency=1,
                           tokens_per_minute=60_000, progress=False)
        times = [r.received_at for r in server.requests]
    assert result.outputs == ["ok", "ok"]
    assert times[1] - times[0] >= 0.35  # the second waited for the bucket to refill
