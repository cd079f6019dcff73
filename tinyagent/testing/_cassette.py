"""Record and replay real provider traffic (docs/notebook.md#record-and-replay):
:class:`RecordingBrain` and :class:`ReplayBrain`.

A cassette is a JSONL file, one exchange per line::

    {"key": "<sha256 of the normalized request>", "request": {...normalized...},
     "status": 200, "content_type": "text/event-stream", "body": "<exact response text>"}

(``body_b64`` replaces ``body`` when the bytes are not UTF-8.) The response body is kept
byte-exact and replayed through ``Reply.raw``. Request headers are never stored, and the API key
is scrubbed from anything written. Normalizing drops fields that differ between runs without
changing the answer (``stream_options``, session ids, ``user``), then serializes with sorted keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._reply import Reply

__all__ = ["CassetteMiss", "RecordingBrain", "ReplayBrain", "normalize_request", "request_key"]

#: Body fields that vary from run to run without changing what the model is asked.
VOLATILE_FIELDS = frozenset({"stream_options", "session_id", "prompt_cache_key", "user",
                             "metadata"})


def normalize_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request body without run-specific fields (see :data:`VOLATILE_FIELDS`)."""
    return {k: v for k, v in request.items() if k not in VOLATILE_FIELDS}


def request_key(request: Mapping[str, Any]) -> str:
    """sha256 of the normalized request, serialized with sorted keys."""
    text = json.dumps(normalize_request(request), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CassetteMiss(LookupError):
    """A replayed request that the cassette has no recording for (served as HTTP 500)."""


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "<redacted>") if secret else text


class ReplayBrain:
    """Serves the recordings of a cassette and fails loudly on any request it has not seen.

    A request recorded several times is answered with its recordings in order, the last one
    repeating. ``misses`` lists the keys of unknown requests (each also answered HTTP 500 with
    a message naming the cassette and how to record it).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"cassette {self.path} does not exist; record it first")
        self._answers: dict[str, list[Reply]] = {}
        self._served: dict[str, int] = {}
        self.misses: list[str] = []
        self._lock = threading.Lock()
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                body = (base64.b64decode(entry["body_b64"]) if "body_b64" in entry
                        else entry["body"].encode("utf-8"))
                reply = Reply.raw(body, status=int(entry["status"]),
                                  content_type=entry.get("content_type"))
                self._answers.setdefault(entry["key"], []).append(reply)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{self.path}:{number}: not a cassette entry ({exc})") from None

    def __len__(self) -> int:
        return sum(len(replies) for replies in self._answers.values())

    def __call__(self, request: dict[str, Any]) -> Reply:
        key = request_key(request)
        with self._lock:
            replies = self._answers.get(key)
            if not replies:
                self.misses.append(key)
                raise CassetteMiss(
                    f"cassette {self.path} has no recording for this request (key {key[:12]}); "
                    "record it again, the request changed")
            position = self._served.get(key, 0)
            self._served[key] = position + 1
        return replies[min(position, len(replies) - 1)]


class RecordingBrain:
    """Forwards each request to a real ``upstream`` chat endpoint, serves its answer, and appends
    the exchange to the cassette at ``path``.

    ``upstream`` is the full endpoint URL (``https://openrouter.ai/api/v1/chat/completions``);
    ``api_key`` is sent as ``Authorization: Bearer`` and never written (it is scrubbed from the
    stored bodies too). The upstream answer is read completely before it is served, so the
    client sees the recorded bytes exactly as a replay will serve them.
    """

    def __init__(self, path: str | Path, upstream: str, *, api_key: str | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = 300.0) -> None:
        if not upstream.startswith(("http://", "https://")):
            raise ValueError(f"upstream must be an http(s) URL, got {upstream!r}")
        self.path = Path(path)
        self.upstream = upstream
        self.api_key = api_key
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.recorded = 0
        self._lock = threading.Lock()

    async def __call__(self, request: dict[str, Any]) -> Reply:
        import httpx  # a dependency of tinyagent; imported here so replay needs no network stack

        headers = {"Content-Type": "application/json", **self.headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.upstream, json=request, headers=headers)
        body = response.content
        content_type = response.headers.get("content-type", "application/json")
        self._append(request, response.status_code, content_type, body)
        return Reply.raw(_scrub_bytes(body, self.api_key), status=response.status_code,
                         content_type=content_type)

    def _append(self, request: dict[str, Any], status: int, content_type: str,
                body: bytes) -> None:
        entry: dict[str, Any] = {"key": request_key(request),
                                 "request": normalize_request(request),
                                 "status": status, "content_type": content_type}
        try:
            entry["body"] = _scrub(body.decode("utf-8"), self.api_key)
        except UnicodeDecodeError:
            entry["body_b64"] = base64.b64encode(_scrub_bytes(body, self.api_key)).decode("ascii")
        line = _scrub(json.dumps(entry, ensure_ascii=False), self.api_key)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
            self.recorded += 1


def _scrub_bytes(body: bytes, secret: str | None) -> bytes:
    return body.replace(secret.encode("utf-8"), b"<redacted>") if secret else body
