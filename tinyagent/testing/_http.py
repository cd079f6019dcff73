"""A minimal HTTP/1.1 request parser for the loopback server (requests only, no responses).

It parses from a growing buffer and returns ``None`` until a whole request (head and body,
``Content-Length`` or chunked) has arrived, so the protocol can feed it whatever TCP delivers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HttpError", "ParsedRequest", "parse_request", "MAX_BODY", "MAX_HEAD"]

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


class HttpError(Exception):
    """A request that cannot be served; answered with ``status`` and then the connection closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ParsedRequest:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


def _chunked_body(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``start``: (body, end offset), or None if incomplete."""
    parts: list[bytes] = []
    pos = start
    total = 0
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = bytes(buffer[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(400, f"bad chunk size {size_text[:20]!r}") from None
        total += size
        if total > MAX_BODY:
            raise HttpError(413, "request body too large")
        data_start = line_end + 2
        if size == 0:
            # skip optional trailers up to the blank line
            trailer_end = buffer.find(b"\r\n", data_start)
            while trailer_end > data_start:
                data_start = trailer_end + 2
                trailer_end = buffer.find(b"\r\n", data_start)
            if trailer_end < 0:
                return None
            return b"".join(parts), trailer_end + 2
        if len(buffer) < data_start + size + 2:
            return None
        parts.append(bytes(buffer[data_start : data_start + size]))
        pos = data_start + size + 2


def parse_request(buffer: bytearray) -> ParsedRequest | None:
    """Take one complete request off the front of ``buffer`` (consuming it), else None."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buffer) > MAX_HEAD:
            raise HttpError(431, "request head too large")
        return None
    head = bytes(buffer[:head_end]).decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise HttpError(400, f"bad request line {lines[0][:100]!r}")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"bad header line {line[:100]!r}")
        headers.append((name, value.strip()))
    request = ParsedRequest(method, target, version, headers, b"")
    body_start = head_end + 4
    if (request.header("transfer-encoding") or "").lower() == "chunked":
        decoded = _chunked_body(buffer, body_start)
        if decoded is None:
            return None
        request.body, end = decoded
    else:
        length_text = request.header("content-length") or "0"
        try:
            length = int(length_text)
        except ValueError:
            raise HttpError(400, f"bad Content-Length {length_text[:20]!r}") from None
        if length < 0 or length > MAX_BODY:
            raise HttpError(413, "request body too large")
        if len(buffer) < body_start + length:
            return None
        end = body_start + length
        request.body = bytes(buffer[body_start:end])
    del buffer[:end]
    return request
