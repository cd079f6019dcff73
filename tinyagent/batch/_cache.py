"""The resume cache: ``cache="run.sqlite"`` keeps every row that finished with an output.

One table, keyed by the row key (``_rows.row_key``: the agent configuration's fingerprint and the
row's prompt), written with one commit per finished row, in WAL mode, so a batch killed at any
point (``kill -9`` included) keeps every row that had finished. Failed rows are not stored: a
rerun tries them again. Only the final answer is kept (text, or the ``output_type`` as JSON),
with the attempts, usage and cost it took the first time.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

__all__ = ["ResultCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_rows (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,          -- 'text' or 'json'
    output TEXT NOT NULL,
    usage TEXT NOT NULL,
    cost REAL NOT NULL,
    created REAL NOT NULL
)
"""


class ResultCache:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        import sqlite3

        self.path = os.fspath(path)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a crash
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get(self, key: str) -> tuple[str, str] | None:
        """``(kind, output)`` of a stored row, or None."""
        found = self._db.execute(
            "SELECT kind, output FROM batch_rows WHERE key = ?", (key,)
        ).fetchone()
        return (found[0], found[1]) if found is not None else None

    def put(self, key: str, kind: str, output: str, usage: dict[str, Any], cost: float) -> None:
        with self._db:  # one transaction, committed now
            self._db.execute(
                "INSERT OR REPLACE INTO batch_rows (key, kind, output, usage, cost, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, kind, output, json.dumps(usage), float(cost), time.time()),
            )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM batch_rows").fetchone()[0])

    def close(self) -> None:
        self._db.close()
