"""``%%agent --map VAR`` (docs/batch.md#in-a-notebook) through a bare IPython shell and loopback
model servers: the template per row (never the namespace), the conversation's configuration, the
options, the summary and ``-o``, the refusals, Stop and Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from support.notebook_shell import fresh_shell, outputs_text, session_of
from support.recording_comm import RecordingComm, install_recording_comms

from tinyagent.batch import BatchResult
from tinyagent.batch._progress import ProgressCounts
from tinyagent.notebook._batch_progress import BatchSummary, NotebookProgress, StopRelay
from tinyagent.notebook._interrupt import install_transformer, uninstall_transformer
from tinyagent.notebook._magics import _budget
from tinyagent.testing import ModelServer, Reply, ScriptedBrain

CITIES = pd.DataFrame({"city": ["Oslo", "Rome", "Lima"], "n": [1, 2, 3]}, index=["a", "b", "c"])


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    sh = fresh_shell(monkeypatch, tmp_path)
    for key in ("df", "rows", "res", "_agent_batch", "city", "cap", "mine"):
        sh.user_ns.pop(key, None)
    yield sh
    session_of(sh).stop_servers()


@pytest.fixture
def demo(shell: InteractiveShell) -> Any:
    """``%agent demo``: the default conversation on the offline demo model; its server."""
    with capture_output():
        shell.run_line_magic("agent", "demo")
    return session_of(shell).demo_server


@pytest.fixture
def slow(shell: InteractiveShell) -> Any:
    """A scripted server whose every answer streams for ~0.4 s, as the default conversation."""
    brain = ScriptedBrain(
        lambda request: Reply(text="slow answer " * 4, chunking="words", delay=0.05)
    )
    server = ModelServer(brain).start()
    shell.run_line_magic("agent", f"config provider=demo model=scripted base_url={server.url}")
    yield server
    server.stop()


def prompts(server: Any) -> list[str]:
    """The user message of every chat request the server got, in arrival order."""
    texts = []
    for request in server.requests:
        if not request.path.endswith("/chat/completions"):
            continue
        content = [m for m in request.body["messages"] if m["role"] == "user"][-1]["content"]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        texts.append(content)
    return texts


def run_map(shell: InteractiveShell, line: str, body: str) -> Any:
    with capture_output() as captured:
        shell.run_cell_magic("agent", line, body)
    return captured


def test_demo_then_map_over_a_dataframe_runs_offline_and_stores_a_dataframe(
    shell: InteractiveShell, demo: Any
) -> None:
    shell.user_ns["df"] = CITIES
    shell.user_ns["city"] = "NAMESPACE"  # --map never fills {city} from the namespace
    captured = run_map(shell, "--map df -o res --concurrency 2", "Say hello to {city} ({n}) {{x}}")
    assert sorted(prompts(demo)) == [
        "Say hello to Lima (3) {x}",
        "Say hello to Oslo (1) {x}",
        "Say hello to Rome (2) {x}",
    ]
    frame = shell.user_ns["res"]
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == ["a", "b", "c"]
    assert (
        frame.loc["b", "output"].startswith("You wrote:") and "Rome (2)" in frame.loc["b", "output"]
    )
    assert frame["error"].isna().all()
    result = shell.user_ns["_agent_batch"]
    assert isinstance(result, BatchResult) and result.counts["done"] == 3
    [summary] = captured.outputs
    text = summary.data["text/plain"]
    assert text.splitlines()[0].startswith("3 rows · 3 done · 0 failed · ")
    assert "city=Oslo, n=1" in text and "done" in text.splitlines()[1]
    html = summary.data["text/html"]
    assert "<table>" in html and "<td>city=Rome, n=2</td>" in html and 'class="ta-time"' in html
    # the conversation's own history is untouched: a batch never talks in it
    assert session_of(shell).conversation().agent.state.messages == []


def test_lists_of_strings_and_of_dicts(shell: InteractiveShell, demo: Any) -> None:
    shell.user_ns["rows"] = ["tea", "coffee"]
    run_map(shell, "--map rows -o res", "Describe {} ({input})")
    assert sorted(prompts(demo)) == ["Describe coffee (coffee)", "Describe tea (tea)"]
    assert list(shell.user_ns["res"]["input"]) == ["tea", "coffee"]
    demo.clear_requests()
    shell.user_ns["rows"] = [{"drink": "milk"}, {"drink": "juice", "extra": 1}]
    captured = run_map(shell, "--map rows", "Pour {drink}")
    assert sorted(prompts(demo)) == ["Pour juice", "Pour milk"]
    assert "drink=juice, extra=1" in outputs_text(captured)


@pytest.mark.parametrize(
    ("rows", "body", "message"),
    [
        (CITIES, "Visit {country}", "the template needs {country}, which df does not have "
         "(its columns: 'city', 'n')"),
        (CITIES, "Visit {}", "{} fills from a list of strings; name a column of df"),
        ([{"city": "Oslo"}, {"town": "Rome"}], "Visit {city.upper}",
         "the template needs {city}, which row 1 does not have (its keys: 'town')"),
        (["Oslo"], "Visit {city}", "the template needs {city}, but row 0 is a str"),
        ([1, 2], "Visit {}", "row 0 is a int; rows are dicts or strings"),
        ({"city": "Oslo"}, "Visit {city}", "needs a DataFrame, a list of dicts or a list of "
         "strings, not dict"),
        (CITIES, "Visit {city", "the cell body is not a str.format template"),
    ],
)  # fmt: skip
def test_a_template_the_rows_cannot_fill_is_a_usage_error_and_sends_nothing(
    shell: InteractiveShell, demo: Any, rows: Any, body: str, message: str
) -> None:
    shell.user_ns["df"] = rows
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic("agent", "--map df", body)
    assert message in str(raised.value)
    assert prompts(demo) == []


def test_usage_errors_of_the_map_options(shell: InteractiveShell, demo: Any) -> None:
    shell.user_ns["df"] = CITIES
    for line, message in [
        ("--map nothing", "--map nothing: no such variable"),
        ("--map df --bg", "--bg cannot be combined with --map"),
        ("--map df --kernel", "--kernel cannot be combined with --map"),
        ("--map df --budget lots", "an int is tokens"),
        ("--map df --concurrency 0", "expected an int of 1 or more"),
    ]:
        with pytest.raises(UsageError, match=message):
            shell.run_cell_magic("agent", line, "Hi {city}")
    with pytest.raises(UsageError, match="needs a template in the cell body"):
        shell.run_cell_magic("agent", "--map df", "\n")
    with pytest.raises(UsageError, match="a resume-cache path is for --map cells"):
        shell.run_cell_magic("agent", "--cache x.sqlite", "Hi")
    assert prompts(demo) == []


def test_budget_values() -> None:
    assert _budget("20000") == 20000 and _budget("20_000") == 20000
    assert _budget("0.50") == 0.5 and _budget("$2") == 2.0 and isinstance(_budget("$2"), float)
    assert _budget("$$2") == 2.0 and isinstance(_budget("$$2"), float) and _budget("2$") == 2.0
    for bad in ("-1", "two", "$"):
        with pytest.raises(Exception, match="an int is tokens"):
            _budget(bad)


def test_a_token_budget_leaves_the_rest_not_run(shell: InteractiveShell, demo: Any) -> None:
    shell.user_ns["df"] = CITIES
    captured = run_map(shell, "--map df -o res --concurrency 1 --budget 1", "Hi {city}")
    assert len(prompts(demo)) == 1
    frame = shell.user_ns["res"]
    assert list(frame["error"].fillna("")) == ["", "not run: budget", "not run: budget"]
    text = outputs_text(captured)
    assert "2 not run" in text and "stopped: the budget is spent" in text


def test_the_resume_cache_answers_a_rerun_without_sending(
    shell: InteractiveShell, demo: Any, tmp_path: Any
) -> None:
    shell.user_ns["df"] = CITIES
    path = tmp_path / "cities.sqlite"
    run_map(shell, f"--map df --cache {path}", "Hi {city}")
    assert len(prompts(demo)) == 3 and path.is_file()
    captured = run_map(shell, f"--map df -o res --cache {path}", "Hi {city}")
    assert len(prompts(demo)) == 3, "nothing was sent again"
    assert list(shell.user_ns["res"]["cached"]) == [True, True, True]
    assert "3 from cache" in outputs_text(captured)


def test_the_batch_runs_with_the_configuration_of_the_conversation(
    shell: InteractiveShell, demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Any, Any, dict[str, Any]]] = []

    async def fake_arun_batch(config: Any, rows: Any, **options: Any) -> BatchResult:
        seen.append((config, rows, options))
        return BatchResult([])

    monkeypatch.setattr("tinyagent.batch.arun_batch", fake_arun_batch)
    shell.user_ns["df"] = CITIES
    run_map(shell, "--map df -s 'Be brief.' --temperature 0.2 --no-cache", "Hi {city}")
    config, rows, options = seen[-1]
    assert rows is CITIES and options["prompt"] == "Hi {city}"
    assert (config.model.provider, config.model.id) == ("demo", "tinyagent-demo")
    assert config.model.base_url == demo.url
    assert config.system_prompt == "Be brief." and config.options.temperature == 0.2
    assert config.options.enable_prompt_caching is False
    assert "budget" in options and options["budget"] is None and "concurrency" not in options
    # the system prompt is sticky, as for a normal cell
    assert session_of(shell).conversation().sticky["system"] == "Be brief."
    run_map(shell, "--map df --budget $0.25 --concurrency 3 --cache c.db", "Hi {city}")
    config, _rows, options = seen[-1]
    assert config.system_prompt == "Be brief." and config.options.enable_prompt_caching is True
    assert options["budget"] == 0.25 and options["concurrency"] == 3
    assert options["cache"] == "c.db"
    # --name: that conversation's settings; --agent VAR: that Agent, changed for this batch only
    shell.run_line_magic("agent", "config provider=demo")
    run_map(shell, f"--map df --name other -m other-model --base-url {demo.url}", "Hi {city}")
    assert seen[-1][0].model.id == "other-model"
    assert session_of(shell).conversation("other").sticky["model"] == "other-model"
    from tinyagent.agent import Agent, AgentOptions
    from tinyagent.alchemy_provider import OpenAICompatModel

    mine = Agent(AgentOptions())
    mine.set_model(OpenAICompatModel(provider="demo", id="mine", base_url=demo.url))
    mine.set_system_prompt("Mine.")
    shell.user_ns["mine"] = mine
    run_map(shell, "--map df --agent mine -m swapped", "Hi {city}")
    config = seen[-1][0]
    assert config.model.id == "swapped" and config.system_prompt == "Mine."
    assert mine.state.model.id == "mine", "the Agent itself is left as it was"


def test_a_missing_key_shows_the_banner_and_runs_nothing(shell: InteractiveShell) -> None:
    shell.user_ns["df"] = CITIES
    captured = run_map(shell, "--map df -o res", "Hi {city}")
    text = outputs_text(captured)
    assert "No API key for provider 'openrouter'" in text and "%agent demo" in text
    assert "res" not in shell.user_ns and "_agent_batch" not in shell.user_ns


def test_quiet_shows_nothing_but_stores_the_result(shell: InteractiveShell, demo: Any) -> None:
    shell.user_ns["df"] = CITIES
    captured = run_map(shell, "--map df -o res --quiet", "Hi {city}")
    assert captured.outputs == [] and captured.stderr == ""
    assert len(shell.user_ns["res"]) == 3


def test_the_transformer_path_awaits_the_batch_on_the_loop(
    shell: InteractiveShell, demo: Any
) -> None:
    install_transformer(shell)
    try:
        shell.user_ns["df"] = CITIES
        with capture_output() as captured:
            outcome = shell.run_cell("%%agent --map df -o res\nHi {city}")
        assert outcome.success and outcome.result is None
        assert len(shell.user_ns["res"]) == 3 and len(prompts(demo)) == 3
        assert outputs_text(captured).startswith("3 rows · 3 done")
    finally:
        uninstall_transformer(shell)


def test_a_dollar_budget_survives_the_expansion_of_the_magic_line(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []

    async def fake_arun_batch(config: Any, rows: Any, **options: Any) -> BatchResult:
        seen.append(options["budget"])
        return BatchResult([])

    monkeypatch.setattr("tinyagent.batch.arun_batch", fake_arun_batch)
    shell.run_line_magic("agent", "config provider=demo base_url=http://127.0.0.1:9/v1")
    shell.user_ns["df"] = CITIES
    shell.user_ns["cap"] = 500
    install_transformer(shell)
    try:
        with capture_output():
            shell.run_cell("%%agent --map df --budget $2\nHi {city}")
            shell.run_cell("%%agent --map df --budget $cap\nHi {city}")  # a variable still expands
    finally:
        uninstall_transformer(shell)
    # IPython expands the line of a run_cell_magic call itself: there $$ is a literal $
    run_map(shell, "--map df --budget $$3", "Hi {city}")
    assert seen == [2.0, 500, 3.0] and isinstance(seen[0], float) and isinstance(seen[1], int)


def test_help_lists_the_map_options(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        shell.run_line_magic("agent", "help")
    for flag in ("--map VAR", "--concurrency N", "--budget X", "--cache [PATH]"):
        assert flag in captured.stdout, flag


def test_stop_in_the_widget_stops_the_batch_and_the_rest_is_not_run(
    shell: InteractiveShell, slow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    comms: list[RecordingComm] = install_recording_comms(monkeypatch.setattr)
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    widgets: list[NotebookProgress] = []

    def live_progress(progress: Any) -> NotebookProgress:
        widgets.append(NotebookProgress())
        return widgets[-1]

    monkeypatch.setattr("tinyagent.batch._progress.make_progress", live_progress)
    shell.user_ns["rows"] = [f"row {i}" for i in range(30)]
    session = session_of(shell)
    batch = session.prepare_map(session_args(shell, "--map rows -o res --concurrency 3"), "{}")
    assert batch is not None

    async def go() -> Any:
        task = asyncio.ensure_future(session.run_map(batch))
        deadline = time.monotonic() + 20
        while not widgets or widgets[0].counts.done < 2:
            assert time.monotonic() < deadline, "no rows finished"
            await asyncio.sleep(0.01)
        widgets[0]._on_message(widgets[0], {"event": "stop"}, [])
        return await task

    with capture_output():
        result = asyncio.run(go())
    assert comms, "the widget opened its comm"
    assert result.stopped == "stopped"
    statuses = [row.status for row in result]
    assert statuses.count("not_run") >= 20
    assert all(row.error == "not run: stopped" for row in result if row.status == "not_run")
    widget = widgets[0]
    assert widget.finished and widget.state["stopped"] == "stopped"
    assert widget.state["line"].endswith("stopped with the Stop button")
    assert len(slow.requests) < 30


def session_args(shell: InteractiveShell, line: str) -> Any:
    magics = shell.find_cell_magic("agent").__self__
    return magics.parse(line)


def test_ctrl_c_on_the_worker_loop_path_stops_the_batch(shell: InteractiveShell, slow: Any) -> None:
    shell.user_ns["rows"] = [f"row {i}" for i in range(30)]
    timer = threading.Timer(0.6, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    captured = run_map(shell, "--map rows -o res --concurrency 2", "{}")
    assert time.monotonic() - started < 10
    frame = shell.user_ns["res"]
    assert (frame["error"] == "not run: interrupted").sum() >= 20
    assert "interrupted (kernel interrupt)" in outputs_text(captured)


def test_the_relay_forwards_and_keeps_the_stop() -> None:
    calls: list[Any] = []

    class Inner:
        def start(self, counts: Any) -> None:
            calls.append(("start", counts.total))

        def update(self, counts: Any) -> None:
            calls.append(("update", counts.done))

        def finish(self, counts: Any, stopped: Any) -> None:
            calls.append(("finish", stopped))

        def on_stop(self, callback: Any) -> None:
            calls.append(("on_stop", callback))

    stops: list[bool] = []
    relay = StopRelay(Inner())
    relay.start(ProgressCounts(total=2))
    relay.update(ProgressCounts(done=1))
    relay.on_stop(lambda: stops.append(True))
    relay.finish(ProgressCounts(), "budget")
    reasons: list[str] = []
    relay.on_stop(lambda reason="stopped": reasons.append(reason))
    relay.stop("interrupted")
    assert [c[0] for c in calls] == ["start", "update", "on_stop", "finish", "on_stop"]
    assert stops == [True] and reasons == ["interrupted"]
    bare = StopRelay(None)
    bare.start(ProgressCounts())
    bare.on_stop(lambda: stops.append(False))
    bare.stop()
    assert stops == [True, False]


def test_the_summary_escapes_and_clips(demo: Any) -> None:
    from tinyagent.batch import BatchRow

    rows = [BatchRow(i, f"<b>{i}</b>", output="x" * 500) for i in range(7)]
    rows.append(BatchRow(7, "bad", error="boom <script>"))
    summary = BatchSummary(BatchResult(rows, stopped="max_failures"), rows=8)
    html = summary._repr_mimebundle_()["text/html"]
    assert "<b>0</b>" not in html and "&lt;b&gt;0&lt;/b&gt;" in html
    assert "boom &lt;script&gt;" in html and "<script>" not in html
    assert "x" * 200 not in html and "…" in html
    assert "stopped: too many rows failed (max_failures)" in summary.text()
    assert "7 done · 1 failed" in summary.text()
    short = BatchSummary(BatchResult(rows), rows=2)
    assert "… 6 more rows" in short.text() and "… 6 more rows" in short.html()
