"""``NotebookProgress`` (docs/batch.md#progress-in-a-notebook) driven directly with
``ProgressCounts`` and a recording comm: the Progress protocol, the 10/s throttle with its loop
timer, the final state, Stop over the comm, text/plain, and ``make_progress`` in a live kernel."""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Any

import pytest
from support.recording_comm import RecordingComm, install_recording_comms, view_messages

from tinyagent.batch import _progress
from tinyagent.batch._progress import MAX_RATE, Progress, ProgressCounts, make_progress
from tinyagent.notebook._batch_progress import NotebookProgress, stop_reason


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Displays:
    """Stands in for ``IPython.display.display``: records what was displayed, hands out handles."""

    def __init__(self) -> None:
        self.shown: list[Any] = []
        self.updates: list[Any] = []

    def __call__(self, obj: Any, display_id: Any = None, **_: Any) -> Any:
        self.shown.append(obj)
        displays = self

        class Handle:
            def update(self, new: Any) -> None:
                displays.updates.append(new._repr_mimebundle_())

        return Handle() if display_id else None


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> list[RecordingComm]:
    return install_recording_comms(monkeypatch.setattr)


@pytest.fixture
def displays(monkeypatch: pytest.MonkeyPatch) -> Displays:
    recorder = Displays()
    monkeypatch.setattr("IPython.display.display", recorder)
    return recorder


def states(comms: list[RecordingComm]) -> list[dict[str, Any]]:
    """Every ``state`` the kernel sent to the view after it opened, in order."""
    return [
        data["state"]["state"]
        for kind, _size, data in view_messages(comms)
        if kind == "comm_msg" and data.get("method") == "update" and "state" in data["state"]
    ]


def click_stop(progress: NotebookProgress) -> None:
    """What the view sends when Stop is clicked (the comm handler's arguments)."""
    progress._on_message(progress, {"event": "stop"}, [])


def test_it_has_the_progress_protocol_methods_with_their_signatures() -> None:
    for name in ("start", "update", "finish", "on_stop"):
        ours = inspect.signature(getattr(NotebookProgress, name))
        theirs = inspect.signature(getattr(Progress, name))
        assert list(ours.parameters) == list(theirs.parameters), name


def test_start_displays_it_once_and_sends_the_counts(
    comms: list[RecordingComm], displays: Displays
) -> None:
    progress = NotebookProgress(clock=Clock())
    counts = ProgressCounts(total=30)
    progress.start(counts)
    assert displays.shown == [progress]
    [first] = states(comms)
    assert first["total"] == 30 and first["done"] == 0 and first["finished"] is False
    assert first["line"] == counts.line()
    # already displayed (by us, or by the person): a second batch does not display it again
    progress.start(ProgressCounts(total=2))
    assert displays.shown == [progress]


def test_a_progress_the_person_displayed_is_not_displayed_again(
    comms: list[RecordingComm], displays: Displays
) -> None:
    progress = NotebookProgress(clock=Clock())
    progress._repr_mimebundle_()  # what display(progress) in a cell calls
    progress.start(ProgressCounts(total=3))
    assert displays.shown == []


def test_updates_are_throttled_to_ten_per_second_and_finish_always_sends(
    comms: list[RecordingComm], displays: Displays
) -> None:
    clock = Clock()
    progress = NotebookProgress(clock=clock)
    counts = ProgressCounts(total=1000)
    progress.start(counts)
    # 1000 rows over 2 s of (fake) time, one update each: no loop, so no timer either
    for row in range(1000):
        clock.now += 0.002
        counts.done = row + 1
        counts.elapsed += 0.002
        progress.update(counts)
    sent = states(comms)
    assert len(sent) <= 1 + 2 * MAX_RATE + 1, len(sent)
    assert len(sent) >= 2 * MAX_RATE - 1
    progress.finish(counts, None)
    final = states(comms)[-1]
    assert final["done"] == 1000 and final["finished"] is True and final["stopped"] is None
    assert counts.line().endswith(" · ETA 0 s"), "ProgressCounts still says ETA at the end"
    assert final["line"] == counts.line()[: -len(" · ETA 0 s")] + " · " + stop_reason(None)
    # nothing after finish
    before = len(states(comms))
    progress.update(counts)
    assert len(states(comms)) == before


def test_a_throttled_update_is_sent_by_a_loop_timer(
    comms: list[RecordingComm], displays: Displays
) -> None:
    async def go() -> None:
        progress = NotebookProgress()
        counts = ProgressCounts(total=5)
        progress.start(counts)
        counts.running = 3
        progress.update(counts)  # too soon after start: held, with a timer armed
        assert states(comms)[-1]["running"] == 0
        counts.running = 4
        progress.update(counts)  # still one timer; it will send the latest counts
        await asyncio.sleep(1.5 / MAX_RATE)
        assert states(comms)[-1]["running"] == 4
        assert len(states(comms)) == 2
        counts.done, counts.running = 5, 0
        progress.update(counts)  # held again, but finish cancels the timer and sends at once
        progress.finish(counts, None)
        sent = len(states(comms))
        await asyncio.sleep(1.5 / MAX_RATE)
        assert len(states(comms)) == sent and states(comms)[-1]["finished"] is True

    asyncio.run(go())


def test_the_view_shows_every_count_and_eta_and_cost(
    comms: list[RecordingComm], displays: Displays
) -> None:
    clock = Clock()
    progress = NotebookProgress(clock=clock)
    counts = ProgressCounts(total=20)
    progress.start(counts)
    clock.now += 1
    counts.done, counts.cached, counts.failed, counts.running = 8, 2, 1, 3
    counts.tokens, counts.cost, counts.elapsed = 1234, 0.0123, 3.5
    progress.update(counts)
    state = states(comms)[-1]
    assert (state["done"], state["cached"], state["failed"], state["running"]) == (8, 2, 1, 3)
    assert state["tokens"] == 1234 and state["cost"] == "$0.0123"
    assert state["rate"] == "2.0 rows/s"  # (8 - 2 cached + 1 failed) / 3.5 s
    assert state["eta"] == "ETA 6 s"  # 11 rows left at 2 rows/s
    assert state["line"] == counts.line()
    clock.now += 1
    counts.total = None  # a lazy iterable: no ETA
    progress.update(counts)
    assert states(comms)[-1]["eta"] == "" and states(comms)[-1]["total"] is None


def test_stop_calls_the_callback_once_shows_stopping_and_finish_removes_it(
    comms: list[RecordingComm], displays: Displays, caplog: pytest.LogCaptureFixture
) -> None:
    progress = NotebookProgress(clock=Clock())
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    progress.on_stop(lambda: calls.append("stop"))
    progress.on_stop(broken)
    counts = ProgressCounts(total=30, running=4)
    progress.start(counts)
    click_stop(progress)  # throttle or not, the click shows at once
    assert calls == ["stop"] and "batch stop callback failed" in caplog.text
    assert states(comms)[-1]["stopping"] is True
    click_stop(progress)  # a second click (or a second view) does nothing more
    progress._on_message(progress, {"event": "other"}, [])
    progress._on_message(progress, "not a dict", [])
    assert calls == ["stop"]
    counts.running, counts.not_run, counts.done = 0, 26, 4
    progress.finish(counts, "stopped")
    final = states(comms)[-1]
    assert final["finished"] and final["stopped"] == "stopped" and final["stopping"] is False
    assert final["reason"] == "stopped with the Stop button"
    assert final["line"].endswith(
        "26 not run · 0 tokens · 0.0 rows/s · stopped with the Stop button"
    )
    click_stop(progress)  # after finish: nothing
    assert calls == ["stop"]


def test_text_plain_is_the_current_line_and_the_display_ends_on_the_final_line(
    comms: list[RecordingComm], displays: Displays
) -> None:
    progress = NotebookProgress(clock=Clock())
    counts = ProgressCounts(total=3)
    bundle = progress._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["text/plain"] == ProgressCounts().line()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == progress.model_id
    progress._displayed = False  # as if nobody had displayed it
    progress.start(counts)
    counts.done, counts.not_run = 1, 2
    progress.finish(counts, "budget")
    [update] = displays.updates
    data = update[0] if isinstance(update, tuple) else update
    assert data["text/plain"] == counts.line() + " · stopped: the budget is spent"
    assert "2 not run" in data["text/plain"]
    assert repr(progress) == f"NotebookProgress({data['text/plain']!r})"


@pytest.mark.parametrize(
    ("stopped", "said"),
    [
        (None, "finished: every row ran"),
        ("interrupted", "interrupted (kernel interrupt)"),
        ("max_failures", "stopped: too many rows failed (max_failures)"),
        ("something new", "stopped: something new"),
    ],
)
def test_every_way_a_batch_ends_is_said(stopped: str | None, said: str) -> None:
    assert stop_reason(stopped) == said


def test_make_progress_gives_the_widget_in_a_live_kernel_and_nothing_headless(
    comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Shell:
        kernel = object()
        user_ns: dict[str, Any] = {}

    monkeypatch.setattr("IPython.get_ipython", lambda: Shell())
    monkeypatch.setenv("TINYAGENT_RENDER", "live")
    assert isinstance(make_progress(True), NotebookProgress)
    monkeypatch.setenv("TINYAGENT_RENDER", "final")
    assert make_progress(True) is None
    assert _progress.make_progress(False) is None


def test_the_front_end_files_exist_and_use_theme_variables() -> None:
    css = NotebookProgress._css
    text = css.read_text(encoding="utf-8") if hasattr(css, "read_text") else str(css)
    # colours come from JupyterLab's variables, each with a fallback where they are absent
    uses = re.findall(r"var\(--jp-[\w-]+(,?)", text)
    assert uses and all(uses), "a --jp-* variable without a fallback"
    esm = NotebookProgress._esm
    script = esm.read_text(encoding="utf-8") if hasattr(esm, "read_text") else str(esm)
    assert 'event: "stop"' in script and "innerHTML" not in script
