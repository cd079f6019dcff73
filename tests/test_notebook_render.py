"""The renderer fed recorded event sequences: live widget traffic, final outputs, safety."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from support.notebook_fakes import Step, recorded_run
from support.recording_comm import RecordingComm, install_recording_comms, view_messages

from tinyagent.agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    MessageEndEvent,
    MessageStartEvent,
    MessageUpdateEvent,
    TextContent,
)
from tinyagent.notebook._config import render_mode
from tinyagent.notebook._document import RunDocument
from tinyagent.notebook._markdown import BlockSplitter, markdown_html
from tinyagent.notebook._render import FinalRenderer, LiveRenderer, TextRenderer
from tinyagent.notebook._static import COPY_ONCLICK, StaticOutput


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> list[RecordingComm]:
    return install_recording_comms(monkeypatch.setattr)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ViewModel:
    """Applies ops the way ``_widget.js`` does, to check what a browser would show."""

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, Any]] = {}
        self.roots: list[str] = []

    def apply(self, op: list[Any]) -> None:
        part_id, parent, fragment, tail = op
        node = self.parts.get(part_id)
        if node is None:
            node = {"children": [], "tail": tail}
            self.parts[part_id] = node
            siblings = self.parts[parent]["children"] if parent else self.roots
            tails = [i for i, c in enumerate(siblings) if self.parts[c]["tail"]]
            if not tail and tails:
                siblings.insert(tails[0], part_id)
            else:
                siblings.append(part_id)
        node["html"] = fragment

    def html(self, ids: list[str] | None = None) -> str:
        return "".join(
            self.parts[i]["html"] + self.html(self.parts[i]["children"])
            for i in (self.roots if ids is None else ids)
        )


def visible_text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def long_reply(tokens: int) -> str:
    lines = []
    for i in range(tokens // 10):
        if i % 40 == 0:
            lines.append(f"\n## Section {i // 40}\n")
        if i % 40 == 20:
            lines.append(
                "```python\n" + "".join(f"value_{i}_{j} = {j}\n" for j in range(8)) + "```\n"
            )
        lines.append(f"Line {i} of the answer has several words here.\n")
    return "".join(lines)


def feed_live(
    text: str, comms: list[RecordingComm], per_second: float = 1000.0, chunk: int = 4
) -> tuple[LiveRenderer, Clock]:
    clock = Clock()
    renderer = LiveRenderer(RunDocument(clock=clock), clock=clock, display=lambda view: None)
    renderer.start()
    events = recorded_run(Step(text=text, chunk=chunk))
    for event in events:
        renderer(event)
        if event.type == "message_update":
            clock.now += 1.0 / per_second
    renderer.finish()
    return renderer, clock


def test_live_20000_token_reply_stays_under_30_messages_per_second_with_linear_bytes(
    comms: list[RecordingComm],
) -> None:
    text = long_reply(20000)
    feed_live(text, comms)
    messages = [m for m in view_messages(comms) if m[0] == "comm_msg"]
    assert len(messages) > 10
    # each custom message is one flush; rebuild the send times from the simulated schedule
    view_bytes = sum(size for _kind, size, _data in messages)
    assert view_bytes < 12 * len(text), "bytes must grow linearly (finished blocks are sent once)"
    shorter = long_reply(5000)
    comms.clear()
    feed_live(shorter, comms)
    short_bytes = sum(size for kind, size, _d in view_messages(comms) if kind == "comm_msg")
    assert view_bytes / short_bytes < 4 * 1.6, "4x the text must cost about 4x the bytes"


def test_live_flushes_respect_the_rate_budget_on_a_simulated_clock(
    comms: list[RecordingComm],
) -> None:
    clock = Clock()
    renderer = LiveRenderer(RunDocument(clock=clock), clock=clock, display=lambda view: None)
    renderer.start()
    stamps: list[float] = []
    original = renderer.view.send_ops

    def timed(ops: list[Any]) -> None:
        stamps.append(clock.now)
        original(ops)

    renderer.view.send_ops = timed
    for event in recorded_run(Step(text=long_reply(20000), chunk=4)):
        renderer(event)
        clock.now += 0.002  # 500 events per second
    renderer.finish()
    assert len(stamps) > 30
    for start in stamps:
        in_window = [s for s in stamps if start <= s < start + 1.0]
        assert len(in_window) <= 30


def test_live_view_shows_the_whole_answer_once_in_order(comms: list[RecordingComm]) -> None:
    text = long_reply(3000)
    renderer, _ = feed_live(text, comms)
    view = ViewModel()
    for kind, _size, data in view_messages(comms):
        if kind == "comm_msg" and data.get("method") == "custom":
            for op in data["content"]["ops"]:
                view.apply(op)
    shown = visible_text(view.html())
    for line in (f"Line {i} of the answer" for i in range(0, 300, 7)):
        assert shown.count(line + " ") == 1, line
    positions = [shown.index(f"Line {i} of") for i in (0, 100, 299)]
    assert positions == sorted(positions)
    # the document a re-opened view receives in a full state sync is the same
    assert [op[0] for op in renderer.view.document()] == list(renderer.view._parts)


def test_finished_blocks_are_sent_once_and_only_the_tail_is_resent(
    comms: list[RecordingComm],
) -> None:
    feed_live(long_reply(2000), comms)
    puts: dict[str, int] = {}
    for kind, _size, data in view_messages(comms):
        if kind == "comm_msg" and data.get("method") == "custom":
            for part_id, _parent, _html, is_tail in data["content"]["ops"]:
                if not is_tail:
                    puts[part_id] = puts.get(part_id, 0) + 1
    pieces = {k: v for k, v in puts.items() if re.fullmatch(r"i\d+\.\d+", k)}
    assert len(pieces) >= 8
    assert set(pieces.values()) == {1}


def test_live_run_ends_with_the_static_rendering_in_the_same_display(
    comms: list[RecordingComm],
) -> None:
    updates: list[Any] = []

    class Handle:
        def update(self, obj: Any) -> None:
            updates.append(obj)

    renderer = LiveRenderer(RunDocument(), display=lambda view: Handle())
    renderer.start()
    for event in recorded_run(Step(text="Hello **there**")):
        renderer(event)
    renderer.finish()
    assert len(updates) == 1 and isinstance(updates[0], StaticOutput)
    assert "Hello there" in visible_text(updates[0].html)
    assert view_messages(comms)[-1][0] == "comm_close"


def final_bundle(step: Step, clock: Clock | None = None, **kw: Any) -> dict[str, str]:
    shown: list[Any] = []
    renderer = FinalRenderer(RunDocument(clock=clock or Clock()), display=shown.append)
    for event in recorded_run(step, **kw):
        renderer(event)
    renderer.finish()
    assert len(shown) == 1, "exactly one final output per run"
    return shown[0].bundle()


def test_final_mode_output_is_deterministic_and_plain_text_is_stable() -> None:
    step = Step(
        text="Paris is the capital.",
        thinking="Easy one.",
        tool_calls=[("call_9f8e", "lookup", {"q": "France"})],
    )
    first = final_bundle(step, tool_results={"call_9f8e": ("Paris", False)})
    late = Clock()
    late.now = 12345.678
    second = final_bundle(step, clock=late, tool_results={"call_9f8e": ("Paris", False)})
    assert first == final_bundle(step, tool_results={"call_9f8e": ("Paris", False)})
    assert first["text/plain"] == second["text/plain"]
    plain = first["text/plain"]
    assert "Paris is the capital." in plain and "lookup" in plain
    assert not re.search(r"0x[0-9a-f]+|call_9f8e|\d+\.\d+ s", plain)
    assert set(first) == {"text/html", "text/markdown", "text/plain"}


XSS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=\"alert('x')\">",
    "[click](javascript:alert('x'))",
    "<a href=\"javascript:alert('x')\">go</a>",
    "<svg onload=alert('x')></svg>",
    '<iframe src="https://evil.example"></iframe>',
    "<div onmouseover=\"alert('x')\">hover</div>",
]


@pytest.mark.parametrize("payload", XSS)
def test_model_html_is_sanitized_everywhere(payload: str, comms: list[RecordingComm]) -> None:
    text = f"Look:\n\n{payload}\n\nend"
    bundle = final_bundle(
        Step(text=text, tool_calls=[("c1", "echo", {"x": payload})]),
        tool_results={"c1": (payload, False)},
    )
    renderer, _ = feed_live(text, comms)
    sent = json.dumps([m[2] for m in view_messages(comms) if m[0] == "comm_msg"])
    # the static Copy buttons' inline handler is ours (tests/test_code_copy.py), not the model's
    ours = bundle["text/html"].replace(f' onclick="{COPY_ONCLICK}"', "")
    for fragment in (ours, markdown_html(payload), sent):
        lowered = fragment.lower()
        assert "<script" not in lowered
        # shown as text it is harmless; inside a URL attribute it would run
        assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", lowered)
        assert not re.search(r"<[^>]+\son\w+\s*=", lowered), fragment
        assert "<iframe" not in lowered
    # text/markdown: raw HTML is neutralised outside code (where it is shown, not run)
    prose = re.sub(r"```.*?```|`[^`]*`", "", bundle["text/markdown"], flags=re.DOTALL)
    assert "<" not in prose


def events_with(message: AssistantMessage, *updates: AssistantMessageEvent) -> list[Any]:
    return [
        MessageStartEvent(message=message),
        *(MessageUpdateEvent(message=message, assistant_message_event=u) for u in updates),
        MessageEndEvent(message=message),
    ]


def test_retry_status_error_banner_and_context_overflow_hint() -> None:
    doc = RunDocument()
    failed = AssistantMessage(
        content=[TextContent(text="Partial ans")],
        stop_reason="error",
        error_message="context window exceeded: 200000 > 128000",
    )
    for event in events_with(
        failed,
        AssistantMessageEvent(
            type="retry", reason="HTTP 429 Too Many Requests", attempt=1, delay=2.0
        ),
    ):
        doc.apply(event)
    assert doc._status is not None
    doc_rate = RunDocument()
    doc_rate.apply(
        MessageUpdateEvent(
            message=failed,
            assistant_message_event=AssistantMessageEvent(
                type="retry", reason="HTTP 429 Too Many Requests", attempt=1, delay=2.0
            ),
        )
    )
    assert doc_rate._status.body.startswith("rate-limited, retrying in 2 s")
    doc_other = RunDocument()
    doc_other.apply(
        MessageUpdateEvent(
            message=failed,
            assistant_message_event=AssistantMessageEvent(
                type="retry", reason="HTTP 503 Service Unavailable", attempt=2, delay=1.5
            ),
        )
    )
    assert doc_other._status.body.startswith("HTTP 503 Service Unavailable, retrying in 1.5 s")
    text = doc.static_text()
    assert "Partial ans" in text, "the partial answer is kept"
    assert "context window exceeded" in text and "%agent reset" in text and "--new" in text


def test_aborted_run_says_stopped_and_keeps_the_partial() -> None:
    doc = RunDocument()
    aborted = AssistantMessage(
        content=[TextContent(text="Half an ans")],
        stop_reason="aborted",
        error_message="Request was aborted",
    )
    for event in events_with(
        aborted,
        AssistantMessageEvent(type="text_start", content_index=0),
        AssistantMessageEvent(type="text_delta", content_index=0, delta="Half an ans"),
    ):
        doc.apply(event)
    assert doc.stopped
    assert "Half an ans" in doc.static_text() and "[stopped]" in doc.static_text()


def test_tool_card_goes_running_then_done_with_its_own_duration_before_the_batch_ends() -> None:
    clock = Clock()
    doc = RunDocument(clock=clock)
    events = recorded_run(
        Step(text="", tool_calls=[("a", "fast", {"n": 1}), ("b", "slow", {"n": 2})]),
        tool_results={"b": ("boom", True)},
    )
    ends = [i for i, e in enumerate(events) if e.type == "tool_execution_end"]
    for event in events[: ends[0]]:
        doc.apply(event)
    fast, slow = doc.card("a"), doc.card("b")
    assert fast.status == slow.status == "running" and fast.args == {"n": 1}
    doc.tool_finished("a", True, 0.25)
    assert fast.status == "done" and fast.duration == 0.25 and slow.status == "running"
    for event in events[ends[0] :]:
        doc.apply(event)
    assert slow.status == "error" and slow.result == "boom"
    assert "0.25 s" in doc.static_html() and "0.25" not in doc.static_text()


def test_streaming_tool_arguments_show_up_before_the_call_completes() -> None:
    doc = RunDocument()
    events = recorded_run(
        Step(tool_calls=[("a", "write", {"path": "notes.txt", "body": "x" * 50})])
    )
    first_end = next(
        i
        for i, e in enumerate(events)
        if getattr(getattr(e, "assistant_message_event", None), "type", "") == "tool_call_end"
    )
    for event in events[:first_end]:
        doc.apply(event)
    card = doc.card("a")
    assert card.status == "streaming" and '"path": "notes.txt"' in card.args_text()
    ops = doc.take_ops()
    assert any("notes.txt" in op[2] for op in ops)


def test_text_renderer_streams_deltas_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    renderer = TextRenderer(RunDocument())
    for event in recorded_run(
        Step(text="streamed words here", tool_calls=[("c", "add", {"a": 1})]),
        tool_results={"c": ("2", False)},
    ):
        renderer(event)
    out = capsys.readouterr().out
    assert "streamed words here" in out and "[tool add" in out and "tokens in" in out


def test_block_splitter_keeps_fences_and_table_headers_across_cuts() -> None:
    splitter = BlockSplitter(max_tail=80)
    text = (
        "```python\n"
        + "".join(f"x_{i} = {i}\n" for i in range(60))
        + "```\n\n| h1 | h2 |\n|---|---|\n"
        + "".join(f"| {i} | {i} |\n" for i in range(40))
    )
    pieces = []
    for i in range(0, len(text), 3):
        splitter.feed(text[i : i + 3])
        pieces += splitter.take_finished()
        assert len(splitter.tail_source()) < 80 + 120
    pieces += splitter.finish()
    code = [p for p, _ in pieces if "x_" in p]
    # the first chunk opens as written; the others re-open it marked as continued (the view
    # copies the chunks of one block together), and every chunk is closed
    assert len(code) > 3 and code[0].startswith("```python\n")
    assert all(p.startswith("```python \u2063\n") for p in code[1:])
    assert all(p.rstrip().endswith("```") for p in code)
    rows = [(p, cont) for p, cont in pieces if "| h1 |" in p]
    assert len(rows) > 2 and rows[0][1] is False and all(cont for _p, cont in rows[1:])
    joined = "".join(re.sub(r"```python( \u2063)?\n|```\n?", "", p) for p in code)
    assert joined == "".join(f"x_{i} = {i}\n" for i in range(60))


def test_render_mode_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TINYAGENT_RENDER",
        "JPY_SESSION_NAME",
        "PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING",
        "COLAB_RELEASE_TAG",
    ):
        monkeypatch.delenv(name, raising=False)

    class Kernelish:
        kernel = object()

    shell = Kernelish()
    assert render_mode({}, shell) == "final"
    assert render_mode({}, object()) == "text"
    monkeypatch.setenv("JPY_PARENT_PID", "1")
    assert render_mode({}, shell) == "final"
    assert render_mode({"__vsc_ipynb_file__": "/x.ipynb"}, shell) == "live"
    monkeypatch.setenv("JPY_SESSION_NAME", "/nb.ipynb")
    assert render_mode({}, shell) == "live"
    monkeypatch.setenv("TINYAGENT_RENDER", "final")
    assert render_mode({}, shell) == "final"
    monkeypatch.delenv("JPY_SESSION_NAME")
    monkeypatch.setenv("TINYAGENT_RENDER", "live")
    assert render_mode({}, shell) == "live"
    monkeypatch.delenv("TINYAGENT_RENDER")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_2025")
    assert render_mode({}, shell) == "live"
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    monkeypatch.setenv("PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING", "1")
    assert render_mode({}, shell) == "live"


def test_widget_repr_is_stable_and_state_small(comms: list[RecordingComm]) -> None:
    from tinyagent.notebook._widget import AgentView

    view = AgentView(kind="run", running=True)
    assert repr(view) == "AgentView(run)"
    bundle = view._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["text/plain"] == "AgentView(run)"
    view.send_ops([["i1", None, "<p>x</p>", False]])
    assert "doc" not in view.state
    assert view.get_state()["state"]["doc"] == [["i1", None, "<p>x</p>", False]]


def test_document_revision_orders_ops_and_full_syncs(comms: list[RecordingComm]) -> None:
    """Every put and reset bumps the revision the view uses to ignore stale full syncs."""
    from tinyagent.notebook._widget import AgentView

    view = AgentView(kind="run", running=True)
    sent: list[dict] = []
    view.send = sent.append  # type: ignore[method-assign]
    view.send_ops([["a", None, "<p>1</p>", False]])
    view.send_ops([["b", "a", "<p>2</p>", True]])
    assert [m["rev"] for m in sent] == [1, 2]
    full = view.get_state()["state"]
    assert full["rev"] == 2 and [op[0] for op in full["doc"]] == ["a", "b"]
    view._resync({"event": "sync"})
    assert sent[-1] == {"ops": full["doc"], "rev": 2}
    view.reset_document()
    assert view.get_state()["state"]["rev"] == 3 and view.get_state()["state"]["doc"] == []
    assert "rev" not in view.state and "doc" not in view.state
    view.update_state(status="done")
    assert "rev" not in view.state


def test_live_confirm_shows_buttons_and_the_click_decides(comms: list[RecordingComm]) -> None:
    import asyncio

    renderer = LiveRenderer(RunDocument(), display=lambda view: None)
    renderer.start()
    card = renderer.doc.card("call-7", "delete_file")

    async def ask(click_ok: bool) -> bool:
        pending = asyncio.ensure_future(renderer.confirm(card))
        await asyncio.sleep(0)
        buttons = [op for op in renderer.view.document() if "data-confirm" in op[2]]
        assert buttons and "delete_file" in buttons[-1][2]
        key = re.search(r'data-confirm="([^"]+)"', buttons[-1][2]).group(1)
        renderer.view._dispatch(renderer.view, {"event": "confirm", "id": key, "ok": click_ok}, [])
        return await pending

    assert asyncio.run(ask(True)) is True
    assert asyncio.run(ask(False)) is False
    renderer.flush()
    assert not [op for op in renderer.view.document() if "data-confirm" in op[2]], (
        "answered prompts go"
    )
    assert "data-confirm" not in StaticOutput.from_document(renderer.doc).html


def test_format_text_shows_the_answer_verbatim() -> None:
    bundle = final_bundle(Step(text="# not a heading\n*not emphasis*"))
    assert "<h1>" in bundle["text/html"]
    shown: list[Any] = []
    renderer = FinalRenderer(RunDocument(format="text"), display=shown.append)
    for event in recorded_run(Step(text="# not a heading\n*not emphasis*")):
        renderer(event)
    renderer.finish()
    html_out = shown[0].bundle()["text/html"]
    assert "<h1>" not in html_out and "# not a heading" in html_out
    assert shown[0].bundle()["text/markdown"].startswith("```text\n# not a heading")


def test_thinking_is_a_collapsed_section_that_streams() -> None:
    doc = RunDocument()
    events = recorded_run(Step(thinking="Let me think about this carefully.", text="Answer."))
    for event in events[:8]:
        doc.apply(event)
    ops = doc.take_ops()
    shells = [op for op in ops if "<details" in op[2]]
    assert shells and "open" not in shells[0][2], "collapsed by default"
    assert any("Let me" in op[2] for op in ops), "its text streams into the section"
    for event in events[8:]:
        doc.apply(event)
    assert "Let me think" not in doc.static_text() and "Answer." in doc.static_text()
    assert "<details" in doc.static_html()


def test_on_update_partials_show_live_until_the_result_arrives() -> None:
    from tinyagent.agent_types import AgentToolResult, ToolExecutionUpdateEvent

    doc = RunDocument()
    events = recorded_run(
        Step(tool_calls=[("t1", "crawl", {"url": "x"})]), tool_results={"t1": ("3 pages", False)}
    )
    end = next(i for i, e in enumerate(events) if e.type == "tool_execution_end")
    for event in events[:end]:
        doc.apply(event)
    doc.take_ops()
    for n in (1, 2):
        partial = AgentToolResult(content=[TextContent(text=f"{n} pages so far")])
        doc.apply(
            ToolExecutionUpdateEvent(tool_call_id="t1", tool_name="crawl", partial_result=partial)
        )
        ops = doc.take_ops()
        assert [op for op in ops if op[0].endswith(".p") and f"{n} pages so far" in op[2]]
    for event in events[end:]:
        doc.apply(event)
    ops = doc.take_ops()
    assert [op for op in ops if op[0].endswith(".p") and op[2] == ""], "the progress part goes"
    assert [op for op in ops if op[0].endswith(".r") and "3 pages" in op[2]]
    assert doc.card("t1").status == "done"


def test_the_status_line_says_what_the_run_is_doing_at_each_step() -> None:
    doc = RunDocument()
    seen: list[str] = []
    events = recorded_run(
        Step(thinking="Let me look.", text="Reading.", tool_calls=[("a", "read_file", {"p": 1})])
    )
    for event in events:
        doc.apply(event)
        if not seen or seen[-1] != doc.activity:
            seen.append(doc.activity)
    assert seen == [
        "waiting for the model…",
        "thinking…",
        "writing the answer…",
        "writing a call to read_file…",
        "calling tools…",
        "running read_file…",
        "waiting for the model…",
        "",  # the run ended
    ]


def test_thinking_summary_ticks_while_streaming_then_shows_its_time() -> None:
    clock = Clock()
    doc = RunDocument(clock=clock)
    events = recorded_run(Step(thinking="Pondering deeply.", text="Done."))
    ends = next(
        i
        for i, e in enumerate(events)
        if getattr(e, "assistant_message_event", None)
        and e.assistant_message_event.type == "thinking_end"
    )
    for event in events[:ends]:
        doc.apply(event)
    live = "".join(op[2] for op in doc.take_ops())
    assert '<summary class="ta-thinking-live">Thinking…' in live and "data-since=" in live
    clock.now += 2.5
    for event in events[ends:]:
        doc.apply(event)
    shell = [op for op in doc.take_ops() if op[2].startswith('<details class="ta-thinking">')]
    assert shell and '<summary>Thinking <span class="ta-time">2.5 s</span></summary>' in shell[0][2]
    assert "ta-thinking-live" not in doc.static_html() and "data-since" not in doc.static_html()
