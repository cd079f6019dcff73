"""What a batch gives back: one :class:`BatchRow` per input, in input order, in a :class:`BatchResult`.

A row keeps only its final answer (text, or the ``output_type`` instance), its error, and what it
cost; the conversation only with ``keep_messages=True``. Rows that never ran carry an error that
starts with ``"not run: "`` and says why (``budget``, ``max_failures``, ``stopped``,
``interrupted``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, overload

__all__ = ["NOT_RUN", "BatchResult", "BatchRow", "add_usage", "zero_usage"]

#: the prefix of the error of a row that never ran
NOT_RUN = "not run: "
USAGE_KEYS = ("input", "output", "cache_read", "cache_write", "total_tokens")


def zero_usage() -> dict[str, int]:
    return dict.fromkeys(USAGE_KEYS, 0)


def add_usage(total: dict[str, int], usage: Any) -> tuple[int, float]:
    """Add a message's ``usage`` dict into ``total``; returns (tokens, cost) it added."""
    if not isinstance(usage, dict):
        return 0, 0.0
    for key in ("input", "output", "cache_read", "cache_write"):
        value = usage.get(key)
        if isinstance(value, int | float):
            total[key] += int(value)
    tokens = usage.get("total_tokens")
    if not isinstance(tokens, int | float) or not tokens:
        tokens = (usage.get("input") or 0) + (usage.get("output") or 0)
    total["total_tokens"] += int(tokens)
    cost = usage.get("cost")
    spent = cost.get("total") if isinstance(cost, dict) else cost
    return int(tokens), float(spent) if isinstance(spent, int | float) else 0.0


@dataclasses.dataclass(slots=True)
class BatchRow:
    """One input's outcome. ``output`` is None unless the row succeeded; ``error`` None unless
    it failed or did not run."""

    index: int
    input: Any
    output: Any = None
    error: str | None = None
    attempts: int = 0
    usage: dict[str, int] = dataclasses.field(default_factory=zero_usage)
    cost: float = 0.0
    duration: float = 0.0
    messages: list[Any] | None = None
    cached: bool = False  # answered from the resume cache: nothing was sent

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        """``"done"``, ``"failed"`` or ``"not_run"``."""
        if self.error is None:
            return "done"
        return "not_run" if self.error.startswith(NOT_RUN) else "failed"

    def __repr__(self) -> str:
        what = f"error={self.error!r}" if self.error is not None else f"output={_short(self.output)}"
        extra = ", cached" if self.cached else ""
        return f"BatchRow({self.index}, {what}, attempts={self.attempts}{extra})"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class BatchResult(Sequence[BatchRow]):
    """The rows of a batch in input order (``result[i]``, ``len``, iteration), with totals.

    ``stopped`` says why the batch ended early (``"budget"``, ``"max_failures"``, ``"stopped"``,
    ``"interrupted"``), None when every row ran. Rows a lazy iterable never yielded (the batch
    stopped first) are not in it; a list or DataFrame always has every row.
    """

    def __init__(
        self,
        rows: list[BatchRow],
        *,
        stopped: str | None = None,
        duration: float = 0.0,
        frame_index: Any = None,
    ) -> None:
        self._rows = rows
        self.stopped = stopped
        self.duration = duration  # wall time of the whole batch, seconds
        self._frame_index = frame_index  # the input DataFrame's index, for to_pandas()

    @overload
    def __getitem__(self, item: int) -> BatchRow: ...

    @overload
    def __getitem__(self, item: slice) -> list[BatchRow]: ...

    def __getitem__(self, item: int | slice) -> BatchRow | list[BatchRow]:
        return self._rows[item]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[BatchRow]:
        return iter(self._rows)

    # -- totals ---------------------------------------------------------------------------------

    @property
    def outputs(self) -> list[Any]:
        """Every row's output in order (None where a row failed or did not run)."""
        return [row.output for row in self._rows]

    @property
    def errors(self) -> list[BatchRow]:
        """The rows that ran and failed."""
        return [row for row in self._rows if row.status == "failed"]

    @property
    def not_run(self) -> list[BatchRow]:
        return [row for row in self._rows if row.status == "not_run"]

    @property
    def usage(self) -> dict[str, int]:
        total = zero_usage()
        for row in self._rows:
            for key in USAGE_KEYS:
                total[key] += row.usage.get(key, 0)
        return total

    @property
    def cost(self) -> float:
        return sum(row.cost for row in self._rows)

    @property
    def counts(self) -> dict[str, int]:
        """``done`` (cached included), ``cached``, ``failed``, ``not_run``."""
        counts = {"done": 0, "cached": 0, "failed": 0, "not_run": 0}
        for row in self._rows:
            counts[row.status] += 1
            counts["cached"] += row.cached
        return counts

    @property
    def ok(self) -> bool:
        """True when every row has an output."""
        return all(row.error is None for row in self._rows)

    def __repr__(self) -> str:
        c = self.counts
        parts = [f"{c['done']} done" + (f" ({c['cached']} from cache)" if c["cached"] else "")]
        if c["failed"]:
            parts.append(f"{c['failed']} failed")
        if c["not_run"]:
            parts.append(f"{c['not_run']} not run")
        line = f"BatchResult({len(self)} rows: {', '.join(parts)} · {self.usage['total_tokens']} tokens"
        if self.cost:
            line += f" · ${self.cost:.4f}"
        line += f" · {self.duration:.1f} s"
        if self.stopped:
            line += f" · stopped: {self.stopped}"
        errors = self.errors
        if errors:
            line += f"; first error, row {errors[0].index}: {_short(errors[0].error, 120)}"
        return line + ")"

    # -- pandas ---------------------------------------------------------------------------------

    def to_pandas(self) -> Any:
        """A DataFrame, one line per row: the output (an ``output_type``'s fields as columns),
        ``error``, ``attempts``, ``tokens``, ``cost``, ``duration``, ``cached``. For a DataFrame
        input it has that frame's index (``frame.join(result.to_pandas())``); else an ``input``
        column and the row numbers."""
        import pandas as pd

        fields = [_fields(row.output) for row in self._rows]
        structured = any(f is not None for f in fields)  # an output_type: its fields as columns
        records = []
        for row, row_fields in zip(self._rows, fields, strict=True):
            record: dict[str, Any] = {}
            if self._frame_index is None:
                record["input"] = row.input
            if row_fields is not None:
                record.update(row_fields)
            elif not structured:
                record["output"] = row.output
            record.update(
                error=row.error,
                attempts=row.attempts,
                tokens=row.usage.get("total_tokens", 0),
                cost=row.cost,
                duration=row.duration,
                cached=row.cached,
            )
            records.append(record)
        index = self._frame_index
        if index is None or len(index) != len(records):
            index = [row.index for row in self._rows]
        return pd.DataFrame.from_records(records, index=index)


def _fields(output: Any) -> dict[str, Any] | None:
    if hasattr(output, "model_dump"):
        dumped = output.model_dump()
        return dumped if isinstance(dumped, dict) else None
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return dataclasses.asdict(output)
    return None
