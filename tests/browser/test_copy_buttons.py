"""Copy buttons on code blocks and the confirm buttons' choice, in JupyterLab in headless Chromium.

* A ``%%agent`` cell against the offline demo model (``%agent demo``) whose answer has a code
  block: the demo model calls the ``snippet`` tool the prompt names and quotes its result, a
  fenced block. The live view shows the block with one Copy button while it streams (a
  MutationObserver sees every DOM state), the static rendering that replaces it has one too, with
  its inline handler, and a click puts the code on the clipboard (the Clipboard API, and the
  textarea fallback when the API is missing).
* An ``AgentView`` driven directly from the kernel, so the live view stays open: its delegated
  click handler copies a finished block and the growing tail's block, the "Copied" label survives
  the tail's re-render, a long block streamed in several pieces is copied whole, and the confirm
  buttons send ``choice`` (``data-choice``, else ``run``/``skip`` from ``data-ok``) and ``ok``.
* The saved static rendering opened in an untrusted notebook: the handler is stripped, the code
  stays readable and no inert button shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from jupyter_pages import (
    STATIC_OUTPUT,
    WIDGET_OUTPUT,
    JupyterServer,
    open_in_lab,
    start_run_all,
    wait_for_run_all,
    write_notebook,
)

SNIPPET_CODE = "print('copied!')\nx = 1 < 2\n"
SETUP = (
    "%load_ext tinyagent.notebook\n"
    "%agent demo\n"
    "def snippet() -> str:\n"
    '    """A short code snippet."""\n'
    f"    return 'Here it is:\\n```python\\n' + {SNIPPET_CODE!r} + '```\\nThat is all.'"
)
DEMO_CELL = "%%agent --tools snippet\nPlease call snippet now."
VIEW_CELL = """\
from tinyagent.agent_types import (
    AssistantMessage, AssistantMessageEvent, MessageStartEvent, MessageUpdateEvent,
)
from tinyagent.notebook._document import RunDocument
from tinyagent.notebook._render import LiveRenderer
from tinyagent.notebook._widget import AgentView

view = AgentView(kind="run", running=True)
live = LiveRenderer(RunDocument(max_tail=60), view=view, embedded=True)
live.start()
message = AssistantMessage(content=[])
live(MessageStartEvent(message=message))
choices = []
view.on_event("confirm", choices.append)

def feed(text):
    event = AssistantMessageEvent(type="text_delta", content_index=0, delta=text)
    live(MessageUpdateEvent(message=message, assistant_message_event=event))
    live.flush()

view"""

# Watches the demo cell's live widget view: whether a code box with its Copy button showed, and
# whether any box ever had more or fewer than one button.
_WATCH_LIVE = """(selector) => {
    window.__taLive = {boxes: 0, bad: []};
    const check = () => {
        for (const root of document.querySelectorAll(selector)) {
            for (const box of root.querySelectorAll('.ta-code')) {
                const buttons = box.querySelectorAll(':scope > button.ta-copy');
                const ok = buttons.length === 1 && !!box.querySelector(':scope > button.ta-copy + pre');
                if (!ok) window.__taLive.bad.push(box.outerHTML.slice(0, 200));
                window.__taLive.boxes = Math.max(window.__taLive.boxes, 1);
            }
        }
    };
    new MutationObserver(check).observe(document.body, {subtree: true, childList: true,
                                                        characterData: true});
}"""

# Every animation frame: how many Copy buttons the tail has and the first one's opacity.
_WATCH_FRAMES = """() => {
    window.__taFrames = [];
    let raf = 0;
    const sample = () => {
        const buttons = document.querySelectorAll('.ta-tailpart .ta-copy');
        const shown = buttons.length ? getComputedStyle(buttons[0]).opacity : '-';
        window.__taFrames.push(`${buttons.length}:${shown}`);
        raf = requestAnimationFrame(sample);
    };
    sample();
    window.__taStop = () => cancelAnimationFrame(raf);
}"""

_KERNEL_EXEC = """async (code) => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const future = kernel.requestExecute({code, store_history: false});
    let out = '';
    future.onIOPub = (msg) => {
        if (msg.header.msg_type === 'stream') out += msg.content.text;
        if (msg.header.msg_type === 'error') out += `ERROR ${msg.content.ename}: ${msg.content.evalue}`;
    };
    await future.done;
    return out;
}"""


@pytest.fixture
def clip_page(browser: Any, jupyter_server: JupyterServer) -> Iterator[Any]:
    """A page whose origin may read and write the clipboard (the test reads what a click put
    there)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=jupyter_server.base)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def kernel(page: Any, code: str) -> str:
    out = page.evaluate(_KERNEL_EXEC, code)
    assert "ERROR" not in out, out
    return str(out)


def clipboard(page: Any) -> str:
    return str(page.evaluate("() => (window.__taClipboard || navigator.clipboard).readText()"))


def clear_clipboard(page: Any) -> None:
    page.evaluate("() => (window.__taClipboard || navigator.clipboard).writeText('')")


def without_clipboard_api(page: Any) -> None:
    """Hide the Clipboard API from the page's code (as in a non-secure context); keep it for
    reading what the fallback copied."""
    page.evaluate(
        "() => { window.__taClipboard = navigator.clipboard;"
        " Object.defineProperty(navigator, 'clipboard', {value: undefined, configurable: true}); }"
    )


def restore_clipboard_api(page: Any) -> None:
    page.evaluate(
        "() => { Object.defineProperty(navigator, 'clipboard',"
        " {value: window.__taClipboard, configurable: true}); delete window.__taClipboard; }"
    )


def opacity(button: Any) -> float:
    return float(button.evaluate("b => getComputedStyle(b).opacity"))


def check_click_copies(page: Any, button: Any, code: str) -> None:
    """Hover shows the button, a click copies ``code`` and says "Copied" for about 1.5 s."""
    page.mouse.move(0, 0)
    assert opacity(button) == 0, "hidden until the code box is hovered"
    button.locator("xpath=..").hover()
    assert opacity(button) == 1
    clear_clipboard(page)
    button.click()
    page.wait_for_function("b => b.textContent === 'Copied'", arg=button.element_handle())
    assert clipboard(page) == code
    page.wait_for_function(
        "b => b.textContent === 'Copy'", arg=button.element_handle(), timeout=4000
    )


def test_copy_buttons_live_static_and_confirm_choices(
    clip_page: Any, jupyter_server: JupyterServer
) -> None:
    page = clip_page
    notebook = write_notebook(jupyter_server, "copy_buttons.ipynb", [SETUP, DEMO_CELL, VIEW_CELL])
    try:
        open_in_lab(page, jupyter_server, notebook)
        page.evaluate(_WATCH_LIVE, f"{WIDGET_OUTPUT} .tinyagent-run")
        start_run_all(page)
        wait_for_run_all(page, jupyter_server, notebook)
        cells = page.locator(".jp-Notebook .jp-CodeCell")

        # -- the demo answer: live, then static -------------------------------------------------
        static = cells.nth(1).locator(f"{STATIC_OUTPUT} .tinyagent-run")
        static.get_by_text("That is all.").first.wait_for(timeout=30_000)
        live = page.evaluate("() => window.__taLive")
        assert live["boxes"] == 1, "the live view showed the code block with its Copy button"
        assert live["bad"] == [], "one Copy button per code box, always"
        answer = static.locator(".ta-text .ta-code")
        assert answer.count() == 1
        assert answer.locator(":scope > button.ta-copy + pre").count() == 1
        button = answer.locator(":scope > button.ta-copy")
        assert button.get_attribute("onclick"), "the static rendering's own handler"
        assert answer.locator("pre").inner_text() == SNIPPET_CODE
        check_click_copies(page, button, SNIPPET_CODE)
        without_clipboard_api(page)
        try:
            check_click_copies(page, button, SNIPPET_CODE)  # hidden textarea + execCommand
        finally:
            restore_clipboard_api(page)

        # -- an AgentView kept open: the live view's delegated handler -------------------------
        view = cells.nth(2).locator(f"{WIDGET_OUTPUT} .tinyagent-run")
        view.wait_for(timeout=30_000)
        kernel(page, 'feed("Intro.\\n\\n```python\\nfirst = 1\\n```\\n\\nNext:\\n\\n```py\\n")')
        kernel(page, 'feed("grow_0 = 0\\n")')
        view.get_by_text("grow_0").wait_for()
        boxes = view.locator(".ta-code")
        assert boxes.count() == 2
        assert view.locator(".ta-code > button.ta-copy + pre").count() == 2
        finished = boxes.nth(0).locator(":scope > button.ta-copy")
        check_click_copies(page, finished, "first = 1\n")

        # the open tail is re-rendered as it grows: still one button, shown in every frame while
        # the pointer rests on it (no flicker), and "Copied" stays
        tail = view.locator(".ta-tailpart .ta-code > button.ta-copy")
        tail.locator("xpath=..").hover()
        page.evaluate(_WATCH_FRAMES)
        for i in range(3):
            kernel(page, f'feed("m_{i}={i}\\n")')
            view.get_by_text(f"m_{i}=").wait_for()
            page.wait_for_timeout(100)
        frames = page.evaluate("() => { window.__taStop(); return window.__taFrames; }")
        assert len(frames) > 5 and set(frames) == {"1:1"}, frames
        clear_clipboard(page)
        tail.click()
        page.wait_for_function("b => b.textContent === 'Copied'", arg=tail.element_handle())
        grown = "grow_0 = 0\nm_0=0\nm_1=1\nm_2=2\n"
        assert clipboard(page) == grown
        kernel(page, 'feed("grow_1 = 1\\n")')
        view.get_by_text("grow_1").wait_for()
        assert tail.count() == 1 and tail.inner_text() == "Copied"
        page.wait_for_function(
            "() => document.querySelector('.ta-tailpart .ta-copy')?.textContent === 'Copy'",
            timeout=4000,
        )

        # a long block is cut into pieces while it streams: one visible button copies it whole
        lines = [grown, *(f"grow_{i} = {i}\n" for i in range(1, 12))]
        kernel(page, f"for line in {lines[2:]!r}: feed(line)")  # grow_1 is in already
        view.get_by_text("grow_11").wait_for()
        chunks = view.locator(".ta-code").filter(has_text="grow_")
        assert chunks.count() > 2, "the block was cut into pieces"
        visible = [
            chunks.nth(i).locator(":scope > button.ta-copy").is_visible()
            for i in range(chunks.count())
        ]
        assert visible[1:] == [False] * (len(visible) - 1)
        chunks.nth(0).hover()
        clear_clipboard(page)
        chunks.nth(0).locator(":scope > button.ta-copy").click()
        page.wait_for_function(
            "() => document.querySelector('.ta-copy.ta-copied') !== null", timeout=4000
        )
        assert clipboard(page) == "".join(lines)
        without_clipboard_api(page)
        try:
            check_click_copies(page, finished, "first = 1\n")
        finally:
            restore_clipboard_api(page)

        # confirm buttons: choice from data-choice, else from data-ok; Copy sends nothing
        kernel(
            page,
            "view.send_ops([['ask', None, '<div class=\"ta-confirm\">Run? "
            '<button data-confirm="k1" data-ok="1" data-choice="always">Always</button>'
            '<button data-confirm="k1" data-ok="1">Run</button>'
            '<button data-confirm="k1" data-ok="0">Skip</button></div>\', False]])',
        )
        for label in ("Always", "Run", "Skip"):
            view.get_by_role("button", name=label, exact=True).click()
        page.wait_for_timeout(300)
        sent = json.loads(kernel(page, "import json; print(json.dumps(choices))"))
        assert sent == [
            {"event": "confirm", "id": "k1", "ok": True, "choice": "always"},
            {"event": "confirm", "id": "k1", "ok": True, "choice": "run"},
            {"event": "confirm", "id": "k1", "ok": False, "choice": "skip"},
        ]
    finally:
        session = jupyter_server.session(notebook)
        if session is not None:
            jupyter_server.api("DELETE", f"/api/sessions/{session['id']}")


def test_untrusted_static_rendering_keeps_the_code_readable(
    clip_page: Any, jupyter_server: JupyterServer
) -> None:
    from tinyagent.agent_types import AssistantMessage, AssistantMessageEvent, MessageUpdateEvent
    from tinyagent.notebook._document import RunDocument
    from tinyagent.notebook._static import StaticOutput

    doc = RunDocument()
    text = f"Code:\n\n```python\n{SNIPPET_CODE}```\n\nEnd."
    delta = AssistantMessageEvent(type="text_delta", content_index=0, delta=text)
    doc.apply(
        MessageUpdateEvent(message=AssistantMessage(content=[]), assistant_message_event=delta)
    )
    bundle = StaticOutput.from_document(doc).bundle()
    assert "onclick=" in bundle["text/html"]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%%agent\nsaved run", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    name = "copy_untrusted.ipynb"
    (jupyter_server.root / name).write_text(nbformat.writes(nb), encoding="utf-8")  # unsigned
    page = clip_page
    try:
        open_in_lab(page, jupyter_server, name)
        output = page.locator(f"{STATIC_OUTPUT}").first
        output.get_by_text("End.").wait_for(timeout=30_000)
        assert page.locator(".tinyagent [onclick]").count() == 0, "Jupyter strips the handler"
        assert output.locator("pre").first.inner_text() == SNIPPET_CODE
        assert "Copy" not in output.inner_text(), "no inert Copy button shows"
        assert output.locator("button").evaluate_all("bs => bs.every(b => !b.checkVisibility())")
    finally:
        session = jupyter_server.session(name)
        if session is not None:
            jupyter_server.api("DELETE", f"/api/sessions/{session['id']}")
