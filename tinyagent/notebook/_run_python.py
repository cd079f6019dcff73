"""Running the model's code in the user's namespace, the way a cell runs (``run_python``).

:func:`run_code` takes the code through IPython's own input transformers (so ``%timeit`` and
``!ls`` work), runs every statement in ``shell.user_ns`` and evaluates a final expression, as a
cell does. It collects, in this order: what the code printed (stdout and stderr interleaved),
the final value's text, the exception with a traceback trimmed to the model's code, and images:
``display()``-ed PNG/JPEG outputs and the matplotlib figures the code opened (rendered and closed,
so the inline backend does not show them a second time at the end of the ``%%agent`` cell).

Why not ``shell.run_cell``: it would publish the value and the displays straight into the
``%%agent`` cell's output (out of the tool card), bump the execution counter and record history.

A kernel interrupt during the code raises ``KeyboardInterrupt`` in it, as in a cell: while the
``%%agent`` cell awaits, ipykernel's SIGINT handler only cancels the cell's task on the next loop
turn (which a blocking ``time.sleep(30)`` never gives it), so the default handler is put back for
the duration of the code. Only on the main thread: signals are only delivered there.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import dataclasses
import inspect
import io
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["CodeOutcome", "run_code"]

#: traceback frames kept (the innermost ones: where the model's code failed)
_FRAMES = 8
_IMAGE_MIMES = ("image/png", "image/jpeg")


@dataclasses.dataclass
class CodeOutcome:
    output: str = ""  # stdout and stderr, in the order written
    result: str | None = None  # text/plain of the final expression's value
    error: str | None = None  # trimmed traceback
    interrupted: bool = False
    images: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)  # (mime, data)


class _Writer(io.TextIOBase):
    """stdout/stderr during the code: kept in order, and reported as it grows."""

    def __init__(
        self, chunks: list[str], on_write: Callable[[Callable[[], str]], None] | None
    ) -> None:
        self._chunks = chunks
        self._on_write = on_write

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._chunks.append(text)
        if self._on_write is not None:
            # the text so far, joined only if the listener wants it now (it throttles): a loop of
            # prints must not cost a join of everything printed per print
            self._on_write(lambda: "".join(self._chunks))
        return len(text)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _capturing_displays(shell: Any) -> Iterator[list[dict[str, Any]]]:
    from IPython.core.displaypub import CapturingDisplayPublisher

    saved = getattr(shell, "display_pub", None)
    capture = CapturingDisplayPublisher()
    shell.display_pub = capture
    try:
        yield capture.outputs
    finally:
        shell.display_pub = saved


def _split_last_expression(source: str, filename: str) -> tuple[Any, Any]:
    """(the statements, the final expression or None) compiled for ``user_ns``."""
    tree = ast.parse(source, filename=filename)
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = ast.Expression(final.value)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    body = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    expr = compile(last, filename, "eval", flags=flags, dont_inherit=True) if last else None
    return body, expr


def _filename(shell: Any, source: str) -> str:
    """Register the source the way a cell's is, so tracebacks show its lines."""
    compiler = getattr(shell, "compile", None)
    if compiler is not None and hasattr(compiler, "cache"):
        return str(compiler.cache(source, 0, source))
    import linecache

    name = f"<run_python-{abs(hash(source))}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    return name


def _trimmed_traceback(exc: BaseException, filename: str) -> str:
    """The exception with only the frames from the model's code onward (none of ours)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    frames = traceback.extract_tb(tb) if tb is not None else traceback.StackSummary()
    if len(frames) > _FRAMES:
        frames = traceback.StackSummary.from_list(frames[-_FRAMES:])
    lines = ["Traceback (most recent call last):\n", *frames.format()] if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip("\n")


def _open_figures() -> set[int]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return set(pyplot.get_fignums()) if pyplot is not None else set()


def _new_figures(before: set[int]) -> list[bytes]:
    """PNGs of the figures the code opened and did not show; they are closed afterwards."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    images = []
    for number in sorted(set(pyplot.get_fignums()) - before):
        figure = pyplot.figure(number)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        pyplot.close(figure)
        images.append(buffer.getvalue())
    return images


def _displayed_images(outputs: list[dict[str, Any]], texts: list[str]) -> list[tuple[str, bytes]]:
    images = []
    for output in outputs:
        data = output.get("data") or {}
        mime = next((m for m in _IMAGE_MIMES if m in data), None)
        if mime is None:
            if "text/plain" in data:
                texts.append(str(data["text/plain"]) + "\n")
            continue
        raw = data[mime]
        images.append((mime, raw if isinstance(raw, bytes) else base64.b64decode(raw)))
    return images


async def _evaluate(code: Any, namespace: dict[str, Any]) -> Any:
    value = eval(code, namespace)  # noqa: S307 - running the code is the tool's purpose
    if inspect.iscoroutine(value):  # the code used top-level await
        value = await value
    return value


async def run_code(
    shell: Any, code: str, on_output: Callable[[Callable[[], str]], None] | None = None
) -> CodeOutcome:
    """Run ``code`` in ``shell.user_ns`` like a cell; never raises for the code's own errors."""
    outcome = CodeOutcome()
    source = shell.transform_cell(code) if hasattr(shell, "transform_cell") else code
    filename = _filename(shell, source)
    chunks: list[str] = []
    writer = _Writer(chunks, on_output)
    before = _open_figures()
    value: Any = None
    with _capturing_displays(shell) as displays:
        try:
            with contextlib.redirect_stdout(writer), contextlib.redirect_stderr(writer):
                with _interruptible():
                    body, expr = _split_last_expression(source, filename)
                    await _evaluate(body, shell.user_ns)
                    if expr is not None:
                        value = await _evaluate(expr, shell.user_ns)
        except KeyboardInterrupt:
            outcome.interrupted = True
            outcome.error = "KeyboardInterrupt: the code was interrupted"
        except SyntaxError as exc:
            outcome.error = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: a cell reports it as well
            outcome.error = _trimmed_traceback(exc, filename)
    outcome.images = _displayed_images(displays, chunks)
    outcome.output = "".join(chunks)
    if value is not None:
        outcome.result, image = _formatted(shell, value)
        if image is not None and not hasattr(value, "savefig"):  # figures come from pyplot below
            outcome.images.append(image)
    outcome.images += [("image/png", png) for png in _new_figures(before)]
    return outcome


def _formatted(shell: Any, value: Any) -> tuple[str, tuple[str, bytes] | None]:
    """The value's text/plain, and its image when it renders as one (a figure, an Image)."""
    formatter = getattr(shell, "display_formatter", None)
    if formatter is None:
        return repr(value), None
    try:
        data, _ = formatter.format(value)
    except Exception:  # noqa: BLE001 - a broken _repr_*_ still leaves the repr
        return repr(value), None
    text = str(data.get("text/plain", repr(value)))
    for mime in _IMAGE_MIMES:
        if mime in data:
            raw = data[mime]
            return text, (mime, raw if isinstance(raw, bytes) else base64.b64decode(raw))
    return text, None
