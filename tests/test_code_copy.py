"""Copy buttons on code blocks: the markup, the static handler, the live parts, injection."""

from __future__ import annotations

import html
import re
from typing import Any

from support.notebook_fakes import Step, recorded_run

from tinyagent.notebook._document import RunDocument
from tinyagent.notebook._markdown import COPY_BUTTON, BlockSplitter, markdown_html
from tinyagent.notebook._render import FinalRenderer
from tinyagent.notebook._static import COPY_ONCLICK, StaticOutput

BOX = f'<div class="ta-code">{COPY_BUTTON}<pre>'
ANSWER = (
    "Two ways:\n\n```python\nprint('a < b')\n```\n\nor indented:\n\n    x = 1\n\n"
    "> quoted:\n>\n> ```sh\n> ls -l\n> ```\n\n- item\n\n  ```\n  in a list\n  ```\n\nDone."
)
CODES = ["print('a < b')\n", "x = 1\n", "ls -l\n", "in a list\n"]


def boxes(fragment: str) -> list[str]:
    """The visible code of each ``div.ta-code > button.ta-copy + pre`` box, in order."""
    found = re.findall(
        r'<div class="ta-code"><button class="ta-copy" type="button"(?: hidden="hidden" onclick="[^"]*")?'
        r' title="Copy code">Copy</button><pre[^>]*>(.*?)</pre></div>',
        fragment,
        flags=re.DOTALL,
    )
    return [html.unescape(re.sub(r"<[^>]+>", "", body)) for body in found]


def final_bundle(text: str) -> dict[str, str]:
    shown: list[Any] = []
    renderer = FinalRenderer(RunDocument(), display=shown.append)
    for event in recorded_run(Step(text=text)):
        renderer(event)
    renderer.finish()
    assert len(shown) == 1 and isinstance(shown[0], StaticOutput)
    return shown[0].bundle()


def test_every_code_block_gets_one_button_in_the_agreed_markup() -> None:
    out = markdown_html(ANSWER)
    assert boxes(out) == CODES
    assert out.count("<button") == out.count('class="ta-copy"') == len(CODES)
    # the <pre>/<code> are as before: the highlighter's language class stays on <code>
    assert f'{BOX}<code class="language-python">' in out
    assert "ta-code-" not in out, "the rendering nonce never reaches the page"
    assert "Copy" not in markdown_html("No code here, just `inline` code.")


def test_model_text_cannot_make_or_fake_a_copy_button() -> None:
    forged = (
        '<button class="ta-copy" type="button" title="Copy code" onclick="alert(1)">Copy</button>\n\n'
        '<div class="ta-code"><button class="ta-copy">Copy</button><pre>fake</pre></div>\n\n'
        '<pre class="ta-code-0123456789abcdef">guess</pre>\n\n'
        '<span title=\'<button class="ta-copy" type="button"\'>attr</span>\n\n'
        '```html\n<button class="ta-copy" type="button" onclick="alert(2)">x</button>\n```\n'
    )
    out = markdown_html(forged)
    assert out.count("<button") == 1, out  # ours, for the one real code block
    assert boxes(out) == ['<button class="ta-copy" type="button" onclick="alert(2)">x</button>\n']
    bundle = final_bundle(forged)
    page = bundle["text/html"]
    assert page.count("<button") == 1
    # the one tag with an event handler is our button; the model's alert(…) are text at most
    assert re.findall(r"<[^>]*\son\w+\s*=", page) == [
        '<button class="ta-copy" type="button" hidden="hidden" onclick='
    ]
    assert "alert(1)" not in page


def test_static_rendering_has_working_buttons_and_no_copy_word_elsewhere() -> None:
    bundle = final_bundle(ANSWER)
    page = bundle["text/html"]
    assert boxes(page) == CODES
    assert page.count(f'onclick="{COPY_ONCLICK}"') == len(CODES)
    # hidden unless the handler survived: our stylesheet shows [hidden][onclick] buttons only,
    # and an untrusted notebook's sanitizer drops both the handler and the stylesheet
    assert page.count('<button class="ta-copy" type="button" hidden="hidden" onclick="') == len(
        CODES
    )
    assert ".tinyagent .ta-copy[hidden][onclick] { display: block; }" in page
    # the handler is plain attribute text (no quote or markup characters to escape)
    assert not set(COPY_ONCLICK) & set('"<>&')
    assert "navigator.clipboard" in COPY_ONCLICK and "execCommand('copy')" in COPY_ONCLICK
    for alternative in (bundle["text/markdown"], bundle["text/plain"]):
        assert "Copy" not in alternative and "ta-copy" not in alternative
        assert "<button" not in alternative
    assert "print('a < b')" in bundle["text/plain"]


def apply_ops(view: dict[str, str], order: list[str], ops: list[list[Any]]) -> None:
    for part_id, _parent, fragment, _tail in ops:
        if part_id not in view:
            order.append(part_id)
        view[part_id] = fragment


def live_parts(text: str, max_tail: int = 2000, chunk: int = 3) -> tuple[list[str], int]:
    """Stream ``text`` into a document, taking ops after every delta as a flush would; the final
    parts in order and the most Copy buttons any one tail put carried."""
    doc = RunDocument(max_tail=max_tail)
    view: dict[str, str] = {}
    order: list[str] = []
    most_in_tail = 0
    for event in recorded_run(Step(text=text, chunk=chunk)):
        doc.apply(event)
        ops = doc.take_ops()
        for op in ops:
            if op[3]:
                most_in_tail = max(most_in_tail, op[2].count("ta-copy"))
        apply_ops(view, order, ops)
    return [view[i] for i in order], most_in_tail


def test_streamed_answer_shows_one_button_per_block_while_the_tail_is_re_rendered() -> None:
    parts, most_in_tail = live_parts(ANSWER)
    shown = "".join(parts)
    assert boxes(shown) == CODES
    assert shown.count("<button") == len(CODES)
    # the open tail carries the block it is growing, once, and never a second copy of it
    assert most_in_tail == 1
    assert "onclick" not in shown, "the live view's own JS handles the click"


def test_a_long_block_split_across_pieces_marks_its_later_chunks() -> None:
    code = "".join(f"value_{i} = {i} * 2\n" for i in range(40))
    parts, _ = live_parts(f"Here:\n\n```python\n{code}```\n\nAfter.", max_tail=120)
    shown = "".join(parts)
    chunks = boxes(shown)
    assert len(chunks) > 3 and "".join(chunks) == code
    pres = re.findall(r'<div class="ta-code">' + re.escape(COPY_BUTTON) + r"(<pre[^>]*>)", shown)
    assert pres[0] == "<pre>" and set(pres[1:]) == {"<pre data-ta-continued>"}
    assert "\u2063" not in shown, "the continuation marker is not shown"
    # the finished answer is one block again, with one button
    assert boxes(final_bundle(f"Here:\n\n```python\n{code}```\n\nAfter.")["text/html"]) == [code]


def test_the_continuation_marker_is_added_once_per_reopened_fence() -> None:
    splitter = BlockSplitter(max_tail=40)
    splitter.feed("~~~\n" + "".join(f"line {i}\n" for i in range(30)))
    pieces = splitter.take_finished() + splitter.finish()
    assert pieces[0][0].startswith("~~~\n")
    assert all(p.startswith("~~~ \u2063\n") for p, _ in pieces[1:])
    assert all(p.count("\u2063") == 1 for p, _ in pieces[1:])
    code = "".join(c for p, _ in pieces for c in boxes(markdown_html(p)))
    assert code == "".join(f"line {i}\n" for i in range(30))
