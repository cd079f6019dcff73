"""The loopback OpenAI-compatible HTTP/1.1 server: :class:`ModelServer`.

One asyncio event loop on a dedicated daemon thread serves every connection through a small
``asyncio.Protocol`` (no thread per connection), so a thousand paced streams cost a thousand
timers, not a thousand threads. A healthy, unpaced reply is prebuilt once and written with a
single ``transport.write``. The protocol sees the client's FIN/RST directly
(``connection_lost``), which is what the cancellation tests observe through the request log.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import logging
import socket
import struct
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ._brains import Brain, as_brain
from ._faults import ResponsePlan, plan_response, status_line
from ._http import HttpError, ParsedRequest, parse_request
from ._log import Headers, RecordedRequest
from ._reply import Reply

if TYPE_CHECKING:
    from ._spawn import SpawnedServer

__all__ = ["ModelServer"]

logger = logging.getLogger("tinyagent.testing")
_TERMINATOR = b"0\r\n\r\n"


def _frame(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class _ClientGone(Exception):
    """The connection closed while a response was being written."""


class _Connection(asyncio.Protocol):
    """One TCP connection: parses requests one at a time and runs a task per response."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.id = server._next_connection_id()
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.closing_by_server = False
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self.drain_waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.record: RecordedRequest | None = None
        self.continue_sent = False

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        # pause as soon as anything is buffered: "drained" then means "all bytes are in the
        # kernel", so response_complete and bytes_written describe what really left
        transport.set_write_buffer_limits(high=0, low=0)
        self.server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.task is None:
            self._start_next()

    def eof_received(self) -> bool:
        return False  # the client is gone; HTTP clients never half-close while waiting

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        self._wake_writer()
        record = self.record
        if (record is not None and not record.response_complete.is_set()
                and not self.closing_by_server and not self.server._stopping):
            record.closed_at = time.monotonic()
            record.client_closed.set()
        self.server._connections.discard(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_writer()

    # -- request loop -----------------------------------------------------------------------
    def _wake_writer(self) -> None:
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def _start_next(self) -> None:
        if self.closed:
            return
        try:
            request = parse_request(self.buffer)
        except HttpError as exc:
            self._reply_error_and_close(exc.status, exc.message)
            return
        if request is not None:
            self.continue_sent = False
            self.task = self.loop.create_task(self._serve(request))
        elif not self.continue_sent and self.transport is not None:
            # curl sends "Expect: 100-continue" for larger bodies and waits for this line
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end >= 0 and b"100-continue" in bytes(self.buffer[:head_end]).lower():
                self.continue_sent = True
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _reply_error_and_close(self, status: int, message: str) -> None:
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}})
        assert self.transport is not None
        self.transport.write(
            status_line(status)
            + b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % len(body) + body.encode()
        )
        self.closing_by_server = True
        self.transport.close()

    async def _serve(self, request: ParsedRequest) -> None:
        keep = False
        try:
            keep = await self.server._handle(self, request) and request.keep_alive
        except _ClientGone:
            keep = False
        except Exception:  # a bug must not kill the loop thread; log it and drop the connection
            logger.exception("loopback model server: request handler failed")
            keep = False
        finally:
            self.task = None
            self.record = None
        if not keep:
            self.close()
        elif self.buffer:
            self._start_next()

    # -- writing ----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise _ClientGone()
        self.transport.write(data)

    async def drain(self) -> None:
        if self.paused and not self.closed:
            self.drain_waiter = self.loop.create_future()
            await self.drain_waiter
        if self.closed:
            raise _ClientGone()

    async def wait_closed(self, seconds: float | None) -> None:
        """Sleep ``seconds`` (None: forever); raise _ClientGone as soon as the peer leaves."""
        if seconds is None:
            await asyncio.shield(self.lost)
        else:
            await asyncio.wait([self.lost], timeout=seconds)
        if self.closed:
            raise _ClientGone()

    def close(self, reset: bool = False) -> None:
        self.closing_by_server = True
        if self.transport is None or self.closed:
            return
        if reset:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()

    async def send_json(self, status: int, obj: Any, extra: bytes = b"") -> bool:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.write(status_line(status) + b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                   b"%b\r\n%b" % (len(body), extra, body))
        await self.drain()
        return True

    # -- executing a plan ---------------------------------------------------------------------
    async def execute(self, plan: ResponsePlan, record: RecordedRequest, keep_alive: bool) -> bool:
        if plan.stall_forever_before_headers:
            await self.wait_closed(None)
        if plan.headers_after:
            await self.wait_closed(plan.headers_after)
        events = plan.events
        chunked = plan.framing == "chunked"
        keep = keep_alive and plan.framing != "close" and plan.ending == "complete"
        head = [status_line(plan.status)]
        head.extend(b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in plan.headers)
        if chunked:
            head.append(b"Transfer-Encoding: chunked\r\n")
        elif plan.framing == "length":
            length = sum(len(e) for e in events)
            # a dropped response must look cut short, so announce one byte more than is sent
            head.append(b"Content-Length: %d\r\n" % (length + (plan.ending != "complete")))
        head.append(b"Connection: keep-alive\r\n\r\n" if keep else b"Connection: close\r\n\r\n")
        record.status = plan.status
        if plan.streamed_straight:
            self.write(b"".join(head) + self._body_blob(plan))
            record.bytes_written = sum(len(e) for e in events)
            record.events_written = len(events)
            await self.drain()
        else:
            self.write(b"".join(head))
            await self.drain()
            await self._write_events(plan, record, chunked)
        if plan.ending != "complete":
            await self.drain()
            self.close(reset=plan.ending == "reset")
            return False
        if chunked and not plan.streamed_straight:
            self.write(_TERMINATOR)
            await self.drain()
        record.response_complete.set()
        if plan.framing == "close":
            self.close()
        return keep

    def _body_blob(self, plan: ResponsePlan) -> bytes:
        slot = plan.cache_slot
        key = f"blob-{plan.framing}"
        if slot is not None and key in slot:
            return slot[key]  # type: ignore[no-any-return]
        if plan.framing == "chunked":
            blob = b"".join([_frame(e) for e in plan.events]) + _TERMINATOR
        else:
            blob = b"".join(plan.events)
        if slot is not None:
            slot[key] = blob
        return blob

    async def _write_events(self, plan: ResponsePlan, record: RecordedRequest,
                            chunked: bool) -> None:
        for i, event in enumerate(plan.events):
            if plan.stall_at == i:
                await self.wait_closed(plan.stall_seconds)
            elif i and plan.delay > 0:
                await asyncio.sleep(plan.delay)
            if plan.byte_pause is not None:
                await self._write_bytewise(event, plan.byte_pause, chunked)
            else:
                self.write(_frame(event) if chunked else event)
                await self.drain()
            record.bytes_written += len(event)
            record.events_written += 1
        if plan.stall_at is not None and plan.stall_at >= len(plan.events):
            await self.wait_closed(plan.stall_seconds)

    async def _write_bytewise(self, event: bytes, pause: float, chunked: bool) -> None:
        for pos in range(len(event)):
            byte = event[pos : pos + 1]
            self.write(_frame(byte) if chunked else byte)
            await self.drain()
            following = event[pos + 1] if pos + 1 < len(event) else 0
            if 0x80 <= following < 0xC0:  # the next byte continues this character: split here
                await asyncio.sleep(pause)
            else:
                await asyncio.sleep(0)


class ModelServer:
    """A loopback OpenAI-compatible model server on a background thread.

    ``brain`` answers each chat request: ``None`` (the :class:`DemoBrain`), a brain object, a
    function ``(request_json) -> Reply | str``, a list of turns (a :class:`ScriptedBrain`) or a
    single :class:`Reply`/str (served for every request). Use it as a context manager or call
    :meth:`start`/:meth:`stop`. It binds 127.0.0.1 (port 0 = any free port) and refuses
    non-loopback addresses.
    """

    def __init__(self, brain: Any = None, *, host: str = "127.0.0.1", port: int = 0,
                 max_log: int = 10_000) -> None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ValueError(f"ModelServer binds loopback addresses only, not {host!r}")
        self.brain: Brain = as_brain(brain)
        self.host = host
        self._requested_port = port
        self.port = 0
        self._log: deque[RecordedRequest] = deque(maxlen=max_log)
        self._log_changed = threading.Condition()
        self._connections: set[_Connection] = set()
        self._connection_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> ModelServer:
        """Bind and start serving on a daemon thread; returns self once the port is open."""
        if self._thread is not None:
            raise RuntimeError("ModelServer is already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                server = loop.run_until_complete(loop.create_server(
                    lambda: _Connection(self), self.host, self._requested_port, backlog=4096))
            except BaseException as exc:  # report bind errors to start(), in the caller's thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                self._shutdown(loop, server)

        self._loop = loop
        self._thread = threading.Thread(target=run, name="tinyagent-model-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def _shutdown(self, loop: asyncio.AbstractEventLoop, server: asyncio.Server) -> None:
        self._stopping = True
        server.close()
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()
        loop.run_until_complete(asyncio.sleep(0))
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the listening socket, and join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._stopping = True
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None

    def __repr__(self) -> str:
        state = self.url if self._thread is not None else "stopped"
        return f"ModelServer({state}, brain={type(self.brain).__name__})"

    def __enter__(self) -> ModelServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @staticmethod
    def spawn(brain: Any = "demo", **options: Any) -> SpawnedServer:
        """Run a server in its own process; see :func:`spawn_server`."""
        from ._spawn import spawn_server

        return spawn_server(brain, **options)

    # -- addresses ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` (for SDKs that append ``/chat/completions``)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def url(self) -> str:
        """The full chat endpoint, ``http://127.0.0.1:<port>/v1/chat/completions``."""
        return f"{self.base_url}/chat/completions"

    # -- request log --------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, oldest first (the log endpoints excluded)."""
        with self._log_changed:
            return list(self._log)

    @property
    def last_request(self) -> RecordedRequest | None:
        return self._log[-1] if self._log else None

    @property
    def connection_count(self) -> int:
        """How many TCP connections were accepted so far."""
        return self._connection_count

    def clear_requests(self) -> None:
        with self._log_changed:
            self._log.clear()

    def wait_for_requests(self, count: int = 1, timeout: float = 3.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were recorded; TimeoutError otherwise."""
        with self._log_changed:
            if not self._log_changed.wait_for(lambda: len(self._log) >= count, timeout):
                raise TimeoutError(f"expected {count} request(s) within {timeout}s, "
                                   f"got {len(self._log)}")
        return list(self._log)

    def wait_for_disconnect(self, timeout: float = 3.0, index: int = -1) -> bool:
        """Wait until the client closed the connection of request ``index`` (default: the
        latest) before its response ended. False on timeout."""
        deadline = time.monotonic() + timeout
        try:
            record = self.wait_for_requests(1 if index < 0 else index + 1, timeout)[index]
        except TimeoutError:
            return False
        return record.client_closed.wait(max(0.0, deadline - time.monotonic()))

    def _next_connection_id(self) -> int:
        self._connection_count += 1
        return self._connection_count

    def _record(self, conn: _Connection, request: ParsedRequest, body: Any) -> RecordedRequest:
        record = RecordedRequest(
            method=request.method, path=request.path, headers=Headers(request.headers),
            body=body, raw=request.body, received_at=time.monotonic(), connection_id=conn.id)
        with self._log_changed:
            self._log.append(record)
            self._log_changed.notify_all()
        return record

    # -- routing ------------------------------------------------------------------------------
    async def _handle(self, conn: _Connection, request: ParsedRequest) -> bool:
        path, method = request.path, request.method
        if path == "/_requests":
            if method == "DELETE":
                self.clear_requests()
                return await conn.send_json(200, {"cleared": True})
            return await conn.send_json(200, [r.to_dict() for r in self.requests])
        body: Any = None
        parse_error = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError as exc:
                parse_error = f"invalid JSON body: {exc}"
        record = self._record(conn, request, body)
        conn.record = record
        if path.endswith("/models") and method == "GET":
            record.status = 200
            data = {"object": "list", "data": [{"id": "tinyagent-demo", "object": "model",
                                                "created": 0, "owned_by": "tinyagent"}]}
            await conn.send_json(200, data)
            record.response_complete.set()
            return True
        if not path.endswith("/chat/completions"):
            return await self._error(conn, record, 404, f"no route for {method} {path}")
        if method != "POST":
            return await self._error(conn, record, 405, "use POST for /chat/completions")
        if parse_error is not None or not isinstance(body, dict):
            return await self._error(conn, record, 400, parse_error or "the body must be a JSON object")
        try:
            answer = self.brain(body)
            if inspect.isawaitable(answer):
                answer = await answer
            reply = Reply.coerce(answer)
        except Exception as exc:  # the brain's failure is the test's news: answer 500 with it
            logger.warning("loopback model server: brain failed: %s", exc)
            return await self._error(conn, record, 500, f"{type(exc).__name__}: {exc}",
                                     kind="server_error")
        return await conn.execute(plan_response(reply, body), record, request.keep_alive)

    async def _error(self, conn: _Connection, record: RecordedRequest, status: int, message: str,
                     kind: str = "invalid_request_error") -> bool:
        record.status = status
        record.error = message
        await conn.send_json(status, {"error": {"message": message, "type": kind,
                                                "param": None, "code": None}})
        record.response_complete.set()
        return True
