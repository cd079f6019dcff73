"""The conformance corpus through the whole stack (docs/wire.md#conformance): every one of the 1,066
recorded `/chat/completions` exchanges is served byte-exact, with its recorded status and content
type, by one in-process loopback server and streamed by the real extension
(`tinyagent._alchemy.collect_openai_completions`); the final message must match `expected`.

One test per case id, so a regression names the providers it breaks. The comparison rules and the
deliberate departures (with their reasons) live in `conformance_support.py`; the run ends with a
summary line (cases, departures, and the official SDK's record on the same bytes).

    python -m pytest tests/test_conformance.py -q
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.conformance_support import (
    DEPARTURES,
    asks_for_several_choices,
    cases_by_id,
    compare,
    corpus_counts,
    departure_lines,
    load_cases,
    reply_for,
)
from support.core_inputs import context

from tinyagent import _alchemy
from tinyagent.testing import ModelServer

CASE_IDS = [case["id"] for case in load_cases()]

# A custom provider (docs/wire.md#keys): no API key is needed and no Authorization header is sent.
PROVIDER = "conformance-replay"
CONTEXT = context("replay")


class _Summary:
    """Collects per-case results and prints one block at the end of the pytest run (registered
    as a plugin, so it shows in `-q` output)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.passed: list[str] = []
        self.failed: dict[str, list[str]] = {}

    def record(self, case_id: str, diffs: list[str]) -> None:
        if diffs:
            self.failed[case_id] = diffs
        else:
            self.passed.append(case_id)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        ran = len(self.passed) + len(self.failed)
        if not ran:
            return
        counts = corpus_counts()
        departures = sum(case_id in DEPARTURES for case_id in self.passed)
        write = terminalreporter.write_line
        terminalreporter.write_sep("-", "conformance corpus (docs/wire.md#conformance)")
        write(f"{ran} of {counts['cases']} cases replayed ({counts['streams']} streams, "
              f"{counts['http_errors']} HTTP errors; {counts['several_choices']} with n = 3) "
              f"in {time.monotonic() - self.started:.1f} s: {len(self.passed)} match expected, "
              f"{len(self.failed)} differ")
        write(f"{departures} of {len(DEPARTURES)} deliberate departures asserted as such:")
        for case_id, line in departure_lines():
            if case_id in self.passed:
                write(f"  - {line}")
        write(f"for comparison, the official openai SDK on the same bytes: fails on "
              f"{counts['sdk_failed']}, gets {counts['sdk_wrong']} wrong")
        for case_id, diffs in self.failed.items():
            write(f"DIFFERS {case_id}: {'; '.join(diffs)}")


@pytest.fixture(scope="module")
def summary(request: pytest.FixtureRequest) -> _Summary:
    collector = _Summary()
    request.config.pluginmanager.register(collector, "tinyagent-conformance-summary")
    return collector


def _serve_case(request: dict[str, Any]) -> Any:
    # the model id names the case; an unknown id raises, which the server answers with a 500
    # that names it, so a mix-up fails loudly
    return reply_for(cases_by_id()[request["model"]])


@pytest.fixture(scope="module")
def corpus_server() -> Iterator[ModelServer]:
    with ModelServer(_serve_case) as server:
        yield server


def _model(case_id: str, url: str) -> dict[str, Any]:
    return {"id": case_id, "provider": PROVIDER, "api": "openai-completions", "base_url": url,
            "name": None, "headers": None, "reasoning": False, "context_window": None,
            "max_tokens": None}


def _options(case: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"api_key": None, "temperature": None, "max_tokens": None,
                               "max_retries": 0}  # an HTTP error is the case, not a retry
    if asks_for_several_choices(case):
        options["extra_body"] = {"n": 3}  # then only choice 0 is read (docs/wire.md#chunks)
    return options


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_recorded_exchange(case_id: str, corpus_server: ModelServer, summary: _Summary) -> None:
    case = cases_by_id()[case_id]
    corpus_server.clear_requests()
    outcome = _alchemy.collect_openai_completions(
        _model(case_id, corpus_server.url), CONTEXT, _options(case))

    sent = corpus_server.requests
    assert len(sent) == 1, f"{len(sent)} requests for one case (max_retries=0)"
    assert sent[0].body["model"] == case_id
    assert sent[0].body["stream"] is True
    assert sent[0].body.get("n") == (3 if asks_for_several_choices(case) else None)
    assert "authorization" not in sent[0].headers

    diffs = compare(case, outcome)
    if outcome["final_message"]["provider"] != PROVIDER:
        diffs.append(f"provider: got {outcome['final_message']['provider']!r}, expected {PROVIDER!r}")
    summary.record(case_id, diffs)
    assert not diffs, "\n".join(diffs)


def test_corpus_is_the_published_one() -> None:
    """The corpus holds what docs/wire.md#conformance and its README describe, so a truncated or
    swapped file cannot pass for a green run."""
    counts = corpus_counts()
    assert counts == {"cases": 1066, "streams": 937, "http_errors": 129, "several_choices": 3,
                      "sdk_failed": 42, "sdk_wrong": 5}
    by_id = cases_by_id()
    for case_id, departure in DEPARTURES.items():
        assert case_id in by_id, f"departure {case_id} is not in the corpus"
        expected = by_id[case_id]["expected"]
        assert by_id[case_id]["kind"] == "stream"
        assert expected["finish_reason"] is None and expected["error"] is None
        if departure.kind == "truncated_stream":
            assert not expected["done_marker"]
        else:
            assert expected["trailing_incomplete_event"]
