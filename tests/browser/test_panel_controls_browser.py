"""The ChatPanel's controls in JupyterLab and Notebook 7 (headless Chromium), as a person uses them.

The scripted loopback model answers by what it is sent: "slow …" streams a long answer slowly
(time to press Stop or scroll), anything else is answered "Answer N to: <prompt> (images: K)",
with N counting the requests for that prompt and K the image parts the request carried. So the
page itself shows that Retry sent the same prompt again and that a pasted image reached the
server as an image part.
"""

from __future__ import annotations

from typing import Any

import pytest
from jupyter_pages import (
    USE_SERVER,
    JupyterServer,
    collect_console_errors,
    open_in_lab,
    open_in_notebook7,
    ours,
    run_all,
    write_notebook,
)

SETUP = f"""\
from collections import Counter
from tinyagent.testing import ModelServer, Reply, ScriptedBrain
seen = Counter()

def answer(request):
    content = request["messages"][-1]["content"]
    parts = [{{"type": "text", "text": content}}] if isinstance(content, str) else content
    prompt = " ".join(p.get("text", "") for p in parts if p.get("type") == "text")
    images = sum(p.get("type") == "image_url" for p in parts)
    if prompt == "code please":
        return Reply(text="Here:\\n\\n```python\\nx = 41 + 1\\nprint(x)\\n```")
    if prompt.startswith("slow"):
        return Reply(text="Slow words. " * 400 + "THE END", chunk_chars=12, delay=0.02)
    seen[prompt] += 1
    return Reply(text=f"Answer {{seen[prompt]}} to: {{prompt}} (images: {{images}})")

server = ModelServer(ScriptedBrain(answer)).start()
%load_ext tinyagent.notebook
{USE_SERVER}"""
PANEL = "from tinyagent.notebook import ChatPanel\npanel = ChatPanel()\npanel"

# a 2x2 PNG made in the page, pasted into the composer as a file (what pasting a screenshot does)
PASTE_IMAGE = """async (input) => {
    const canvas = document.createElement('canvas');
    canvas.width = 2; canvas.height = 2;
    canvas.getContext('2d').fillRect(0, 0, 2, 2);
    const blob = await new Promise((done) => canvas.toBlob(done, 'image/png'));
    const data = new DataTransfer();
    data.items.add(new File([blob], 'shot.png', { type: 'image/png' }));
    input.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true,
                                                      cancelable: true }));
}"""


def _open_panel(page: Any, server: JupyterServer, front_end: str) -> Any:
    notebook = write_notebook(server, f"panel_controls_{front_end}.ipynb", [SETUP, PANEL])
    (open_in_lab if front_end == "lab" else open_in_notebook7)(page, server, notebook)
    run_all(page, server, notebook)
    panel = page.locator(".tinyagent-panel")
    panel.wait_for(timeout=30_000)
    return panel


def _wait_state(page: Any, state: str, timeout: int = 15_000) -> None:
    page.wait_for_function(
        "s => document.querySelector('.tinyagent-panel button.ta-send')?.dataset.state === s",
        arg=state,
        timeout=timeout,
    )


@pytest.mark.parametrize("front_end", ["lab", "notebook7"])
def test_keys_send_stop_retry_edit_and_paste(
    page: Any, jupyter_server: JupyterServer, front_end: str
) -> None:
    errors = collect_console_errors(page)
    panel = _open_panel(page, jupyter_server, front_end)
    box = panel.locator("textarea.ta-input")
    send = panel.locator("button.ta-send")
    transcript = panel.locator(".ta-transcript")
    assert send.get_attribute("data-state") == "send" and send.is_disabled()

    # Shift+Enter is a new line (nothing sent) and the composer grows with its text
    box.click()
    height = box.evaluate("b => b.offsetHeight")
    box.type("first line")
    for _ in range(3):
        box.press("Shift+Enter")
    box.type("last line")
    assert box.input_value() == "first line\n\n\nlast line"
    assert box.evaluate("b => b.offsetHeight") > height
    assert "first line" not in transcript.inner_text()

    # Enter sends; while the run goes the button is Stop, and Escape stops it
    box.fill("slow please")
    box.press("Enter")
    assert box.input_value() == ""
    transcript.get_by_text("Slow words.", exact=False).first.wait_for(timeout=15_000)
    _wait_state(page, "stop")
    assert send.inner_text() == "Stop"
    assert panel.locator(".ta-status-line .ta-live-status").inner_text().strip() != ""
    box.press("Escape")
    _wait_state(page, "send")
    assert send.inner_text() == "Send"
    assert "Stopped." in transcript.inner_text() and "THE END" not in transcript.inner_text()

    # Up in the empty composer recalls the last message
    box.press("ArrowUp")
    assert box.input_value() == "slow please"
    box.fill("")

    # Send by the button; Retry sends the same prompt again and replaces the answer
    box.fill("Tell me a fact")
    send.click()
    transcript.get_by_text("Answer 1 to: Tell me a fact (images: 0)").wait_for(timeout=15_000)
    _wait_state(page, "send")
    panel.locator("button.ta-retry").click()
    transcript.get_by_text("Answer 2 to: Tell me a fact (images: 0)").wait_for(timeout=15_000)
    _wait_state(page, "send")
    text = transcript.inner_text()
    assert "Answer 1 to" not in text and text.count("Tell me a fact") == 2  # prompt + answer

    # Edit last: the message comes back into the composer; sending it replaces that turn
    panel.locator("button.ta-edit").click()
    page.wait_for_function(
        "() => document.querySelector('.tinyagent-panel textarea.ta-input')?.value"
        " === 'Tell me a fact'"
    )
    assert panel.locator(".ta-editing").is_visible()
    box.fill("Tell me a joke")
    box.press("Enter")
    transcript.get_by_text("Answer 1 to: Tell me a joke (images: 0)").wait_for(timeout=15_000)
    _wait_state(page, "send")
    assert "fact" not in transcript.inner_text()

    # a pasted image shows as a chip, and reaches the model as an image part
    box.evaluate(PASTE_IMAGE)
    panel.locator(".ta-attachments .ta-chip img").wait_for(timeout=5_000)
    box.fill("What is this")
    box.press("Enter")
    transcript.get_by_text("Answer 1 to: What is this (images: 1)").wait_for(timeout=15_000)
    assert panel.locator('.ta-user img[src^="data:image/png;base64,"]').count() == 1
    assert panel.locator(".ta-bar .ta-attachments .ta-chip").count() == 0  # sent, so cleared

    # a file that is not an image is refused in the panel, with the reason
    box.evaluate(
        """(input) => { const data = new DataTransfer();
        data.items.add(new File(['%PDF'], 'report.pdf', { type: 'application/pdf' }));
        input.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true,
                                                          cancelable: true })); }"""
    )
    notice = panel.locator(".ta-notice")
    notice.wait_for(timeout=5_000)
    assert "report.pdf" in notice.inner_text() and "images can be attached" in notice.inner_text()
    # a code block of the answer: Copy, and Insert puts it into a new cell below the panel's
    box.fill("code please")
    box.press("Enter")
    insert = transcript.locator(".ta-code button.ta-insert")
    insert.wait_for(timeout=15_000)
    insert.click()
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.widgets"
        ".map(c => c.model.sharedModel.getSource()).includes('x = 41 + 1\\nprint(x)')",
        timeout=10_000,
    )
    sources = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.widgets"
        ".map(c => c.model.sharedModel.getSource())"
    )
    assert sources.index("x = 41 + 1\nprint(x)") == 2, sources  # right below the panel's cell

    assert ours(errors) == [], errors


def test_the_transcript_follows_the_stream_until_the_reader_scrolls_up(
    page: Any, jupyter_server: JupyterServer
) -> None:
    panel = _open_panel(page, jupyter_server, "lab")
    transcript = panel.locator(".ta-transcript")
    jump = panel.locator("button.ta-jump")
    box = panel.locator("textarea.ta-input")
    box.fill("slow and long")
    box.press("Enter")
    # following: the newest text stays in view as it grows
    page.wait_for_function(
        "() => { const t = document.querySelector('.tinyagent-panel .ta-transcript');"
        " return t.scrollHeight > t.clientHeight + 200; }",
        timeout=30_000,
    )
    at_bottom = "t => t.scrollHeight - t.scrollTop - t.clientHeight <= 24"
    assert transcript.evaluate(at_bottom)
    assert jump.is_hidden()

    # the reader scrolls up: the view stays where they are while the text grows
    transcript.evaluate("t => { t.scrollTop = 0; t.dispatchEvent(new Event('scroll')); }")
    jump.wait_for(state="visible", timeout=5_000)
    grown = transcript.evaluate("t => t.scrollHeight")
    page.wait_for_function(
        "h => document.querySelector('.tinyagent-panel .ta-transcript').scrollHeight > h + 100",
        arg=grown,
        timeout=20_000,
    )
    assert transcript.evaluate("t => t.scrollTop") == 0

    # Jump to latest: back at the bottom, and following again
    jump.click()
    assert transcript.evaluate(at_bottom)
    grown = transcript.evaluate("t => t.scrollHeight")
    page.wait_for_function(
        "h => document.querySelector('.tinyagent-panel .ta-transcript').scrollHeight > h + 100",
        arg=grown,
        timeout=20_000,
    )
    assert transcript.evaluate(at_bottom)
    assert jump.is_hidden()
    panel.locator("button.ta-send").click()  # Stop
    _wait_state(page, "send")
