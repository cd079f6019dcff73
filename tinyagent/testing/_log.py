"""The request log of the loopback server: :class:`RecordedRequest` and :class:`Headers`.

Records are created on the server's event-loop thread and read from test threads. Their
connection facts (``client_closed``, ``response_complete``) are ``threading.Event`` objects so a
test can wait on them with a timeout instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Headers", "RecordedRequest"]


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively; repeated headers are joined with ``", "``.

    Iteration yields the names as the client spelled them.
    """

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in pairs:
            key = name.lower()
            if key in self._items:
                first, previous = self._items[key]
                self._items[key] = (first, f"{previous}, {value}")
            else:
                self._items[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self._items.values())!r})"

    def to_dict(self) -> dict[str, str]:
        """Lower-cased names to values (the JSON form used by ``GET /_requests``)."""
        return {key: value for key, (_, value) in self._items.items()}


@dataclass(eq=False)
class RecordedRequest:
    """One request the server received, and what became of its response.

    ``body`` is the parsed JSON body (None when empty or not JSON), ``raw`` the exact bytes.
    ``received_at``/``closed_at`` are ``time.monotonic()`` values. ``client_closed`` is set when
    the client closed the connection before the response was completely written (a cancelled
    stream); ``response_complete`` when the last byte was handed to the kernel. ``bytes_written``
    counts response body bytes (without HTTP chunk framing) and ``events_written`` the body
    events written so far. ``connection_id`` numbers the TCP connections of the server, so two
    requests with the same id came over one kept-alive connection.
    """

    method: str
    path: str
    headers: Headers
    body: Any
    raw: bytes
    received_at: float
    connection_id: int
    status: int | None = None
    bytes_written: int = 0
    events_written: int = 0
    closed_at: float | None = None
    error: str | None = None
    client_closed: threading.Event = field(default_factory=threading.Event, repr=False)
    response_complete: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def json(self) -> Any:
        """Alias of ``body``."""
        return self.body

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's ``messages`` (empty when absent)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return self.body["messages"]
        return []

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by ``GET /_requests``."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers.to_dict(),
            "body": self.body,
            "raw": self.raw.decode("utf-8", "replace"),
            "received_at": self.received_at,
            "connection_id": self.connection_id,
            "status": self.status,
            "bytes_written": self.bytes_written,
            "events_written": self.events_written,
            "client_closed": self.client_closed.is_set(),
            "closed_at": self.closed_at,
            "response_complete": self.response_complete.is_set(),
            "error": self.error,
        }


def headers_from(mapping: Mapping[str, str]) -> Headers:
    """Build :class:`Headers` from a plain mapping."""
    return Headers(mapping.items())
