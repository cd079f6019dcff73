"""Inputs to ``(index, row)`` pairs, lazily, and the prompt of a row.

A list (or any sized sequence) of str/dict rows, a pandas DataFrame (its rows as dicts, its index
kept for ``to_pandas()``; pandas itself is never imported here, the frame is duck-typed) or any
iterable, consumed one row at a time as the engine asks for the next one.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["PromptError", "PromptSpec", "RowSource", "is_dataframe", "row_key"]


def is_dataframe(value: Any) -> bool:
    return all(hasattr(value, name) for name in ("to_dict", "columns", "index", "iloc"))


class RowSource:
    """The rows of ``inputs`` as ``(index, row)``, numbered from 0 in input order."""

    def __init__(self, inputs: Any) -> None:
        self.frame_index: Any = None
        if is_dataframe(inputs):
            self.frame_index = inputs.index
            rows: Any = inputs.to_dict(orient="records")
        elif isinstance(inputs, str | bytes | Mapping):
            raise TypeError(
                "inputs must be a list (or iterable, or DataFrame) of rows, not a single "
                f"{type(inputs).__name__}; wrap one input in a list: [x]"
            )
        else:
            rows = inputs
        try:
            self.total: int | None = len(rows)
        except TypeError:
            self.total = None  # a lazy iterable: known once consumed
        try:
            self._rows: Iterator[Any] = iter(rows)
        except TypeError:
            raise TypeError(f"inputs must be iterable, got {type(inputs).__name__}") from None
        self.pulled = 0  # rows taken so far
        self._peeked: tuple[int, Any] | None = None
        self.exhausted = False

    @property
    def sized(self) -> bool:
        return self.total is not None

    def peek(self) -> tuple[int, Any] | None:
        """The next row without taking it (None at the end)."""
        if self._peeked is None:
            self._peeked = self._take()
        return self._peeked

    def _take(self) -> tuple[int, Any] | None:
        if self.exhausted:
            return None
        try:
            row = next(self._rows)
        except StopIteration:
            self.exhausted = True
            if self.total is None:
                self.total = self.pulled
            return None
        index = self.pulled
        self.pulled += 1
        return index, row

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return self

    def __next__(self) -> tuple[int, Any]:
        item = self._peeked if self._peeked is not None else self._take()
        self._peeked = None
        if item is None:
            raise StopIteration
        return item


class PromptError(ValueError):
    """A row's prompt could not be made (a template key the row lacks, a bad row type)."""


class PromptSpec:
    """``prompt=``: None (each row is the prompt), a ``str.format`` template over the row's keys,
    or a function row → str."""

    def __init__(self, prompt: str | Callable[[Any], str] | None) -> None:
        if isinstance(prompt, str):
            try:
                list(string.Formatter().parse(prompt))
            except ValueError as exc:
                raise ValueError(f"prompt is not a valid str.format template: {exc}") from None
        elif prompt is not None and not callable(prompt):
            raise TypeError(
                f"prompt must be a str template, a function row -> str or None, got "
                f"{type(prompt).__name__}"
            )
        self.prompt = prompt

    def describe(self) -> str:
        """What the cache fingerprint records of the prompt (the rendered text is in each key)."""
        if isinstance(self.prompt, str):
            return self.prompt
        return "" if self.prompt is None else "callable"

    def render(self, row: Any) -> str:
        prompt = self.prompt
        if prompt is None:
            if isinstance(row, str):
                return row
            raise PromptError(
                f"this row is a {type(row).__name__}, not a str: pass prompt= a template such "
                "as 'Classify: {text}' or a function row -> str"
            )
        if callable(prompt):
            try:
                text = prompt(row)
            except Exception as exc:
                raise PromptError(f"prompt function failed: {type(exc).__name__}: {exc}") from exc
            if not isinstance(text, str):
                raise PromptError(f"prompt function returned {type(text).__name__}, not a str")
            return text
        try:
            if isinstance(row, Mapping):
                return prompt.format_map(row)
            return prompt.format(row, input=row)
        except KeyError as exc:
            key = exc.args[0] if exc.args else "?"
            if isinstance(row, Mapping):
                keys = ", ".join(repr(k) for k in list(row)[:20]) or "none"
                raise PromptError(
                    f"prompt template needs {{{key}}}, which this row does not have "
                    f"(its keys: {keys})"
                ) from None
            raise PromptError(
                f"prompt template needs {{{key}}}, but this row is a {type(row).__name__}: "
                "only {} and {input} can be filled from it"
            ) from None
        except (IndexError, ValueError, AttributeError) as exc:
            raise PromptError(f"prompt template could not be filled from this row: {exc}") from None


def row_key(fingerprint: str, prompt_text: str) -> str:
    """The resume-cache key of a row: its prompt under one agent configuration."""
    digest = hashlib.sha256()
    digest.update(fingerprint.encode("utf-8"))
    digest.update(b"\0")
    digest.update(prompt_text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
