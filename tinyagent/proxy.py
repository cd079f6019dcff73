"""The proxy client: an agent's LLM calls through a tinyagent-compatible proxy
(docs/architecture.md#proxy).

``POST {proxy_url}/api/stream`` with a bearer token; the proxy answers with SSE carrying camelCase
events, turned into ``AssistantMessageEvent``s by ``proxy_event_handlers``. To drive an Agent::

    agent = Agent(AgentOptions(stream_fn=create_proxy_stream_fn(url, token)))
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._constants import ABORTED_TEXT
from ._partial import PartialBuilder
from .agent_types import (
    AssistantMessage,
    AssistantMessageEvent,
    Context,
    JsonValue,
    Model,
    SimpleStreamOptions,
    StreamFn,
    dump_model_dumpable,
    now_ms,
)
from .proxy_event_handlers import process_proxy_event

__all__ = [
    "ProxyStreamOptions",
    "ProxyStreamResponse",
    "create_proxy_stream",
    "create_proxy_stream_fn",
    "stream_proxy",
]

logger = logging.getLogger("tinyagent.proxy")

_NO_TERMINAL_TEXT = "Proxy stream ended without a done or error event"
_SIGNAL_POLL_SECONDS = 0.1
_END = object()


@dataclass
class ProxyStreamOptions:
    auth_token: str = field(repr=False)
    proxy_url: str
    temperature: float | None = None
    max_tokens: int | None = None
    reasoning: JsonValue | None = None
    signal: Callable[[], bool] | asyncio.Event | None = None
    session_id: str | None = None
    timeout: float | None = None  # seconds, for connect and idle; None: 30 s connect, 300 s idle


def _signalled(signal: Callable[[], bool] | asyncio.Event | None) -> bool:
    if signal is None:
        return False
    if isinstance(signal, asyncio.Event):
        return signal.is_set()
    return bool(signal())


def _request_body(model: Model, context: Context, options: ProxyStreamOptions) -> dict[str, Any]:
    level = getattr(model, "thinking_level", None)
    body_context: dict[str, Any] = {
        "system_prompt": context.system_prompt or "",
        "messages": [dump_model_dumpable(m, where="context.messages") for m in context.messages],
    }
    if context.tools:
        body_context["tools"] = [
            {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "label": getattr(t, "label", ""),
            }
            for t in context.tools
        ]
    body_options: dict[str, Any] = {
        "temperature": options.temperature,
        "maxTokens": options.max_tokens,
        "reasoning": options.reasoning,
    }
    if options.session_id:
        body_options["sessionId"] = options.session_id
    return {
        "model": {
            "provider": model.provider,
            "id": model.id,
            "api": model.api,
            "thinking_level": getattr(level, "value", level),
        },
        "context": body_context,
        "options": body_options,
    }


class ProxyStreamResponse:
    """A ``StreamResponse`` reading one proxy stream; starts its reader task at construction."""

    def __init__(self, *, model: Model, context: Context, options: ProxyStreamOptions) -> None:
        self.model = model
        self.context = context
        self.options = options
        self.invalid_payloads = 0  # SSE payloads that were not JSON objects
        self._partial = AssistantMessage(
            stop_reason="stop",
            content=[],
            api=model.api,
            provider=model.provider,
            model=model.id,
            usage=None,
            timestamp=now_ms(),
        )
        self._final: AssistantMessage | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._closed = False
        self._aborted = False
        self._task = asyncio.get_running_loop().create_task(self._read())

    def __aiter__(self) -> ProxyStreamResponse:
        return self

    async def __anext__(self) -> AssistantMessageEvent:
        if self._closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            self._closed = True
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def result(self) -> AssistantMessage:
        await asyncio.wait({self._task})
        if self._final is None:
            raise RuntimeError("No final message available")
        return self._final

    async def aclose(self) -> None:
        """Stop reading and close the HTTP response at once."""
        self._closed = True
        if not self._task.done():
            self._aborted = True
            self._task.cancel()
            await asyncio.wait({self._task})

    # -- the reader task ----------------------------------------------------------------------

    def _emit(self, event: AssistantMessageEvent) -> None:
        if event.type == "done":
            self._final = event.message
        elif event.type == "error" and isinstance(event.error, AssistantMessage):
            self._final = event.error
        self._queue.put_nowait(event)

    def _emit_error(self, text: str, stop_reason: str = "error", *, external: bool = False) -> None:
        token = self.options.auth_token
        if external and token and token in text:  # a body or exception may echo the token
            text = text.replace(token, "***")
        partial = self._partial
        partial.stop_reason = stop_reason  # type: ignore[assignment]
        partial.error_message = text
        self._emit(PartialBuilder(partial).feed("error", None, stop_reason, partial))

    async def _read(self) -> None:
        watcher: asyncio.Task[None] | None = None
        try:
            if _signalled(self.options.signal):
                self._emit_error(ABORTED_TEXT, "aborted")
                return
            if self.options.signal is not None:
                watcher = asyncio.get_running_loop().create_task(self._watch_signal())
            await self._stream()
        except asyncio.CancelledError:
            self._emit_error(ABORTED_TEXT, "aborted")
            if not self._aborted:
                raise
        except Exception as exc:
            aborted = _signalled(self.options.signal)
            text = str(exc) or type(exc).__name__
            self._emit_error(text, "aborted" if aborted else "error", external=True)
        finally:
            if watcher is not None:
                watcher.cancel()
            self._queue.put_nowait(_END)

    async def _watch_signal(self) -> None:
        signal = self.options.signal
        if isinstance(signal, asyncio.Event):
            await signal.wait()
        else:
            while not _signalled(signal):
                await asyncio.sleep(_SIGNAL_POLL_SECONDS)
        self._aborted = True
        self._task.cancel()

    async def _stream(self) -> None:
        seconds = self.options.timeout
        timeout = httpx.Timeout(
            connect=seconds or 30.0,
            read=seconds or 300.0,
            write=seconds or 30.0,
            pool=seconds or 30.0,
        )
        url = self.options.proxy_url.rstrip("/") + "/api/stream"
        headers = {
            "Authorization": f"Bearer {self.options.auth_token}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        body = json.dumps(_request_body(self.model, self.context, self.options))
        async with httpx.AsyncClient(timeout=timeout) as client:
            async with client.stream("POST", url, content=body, headers=headers) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode("utf-8", errors="replace")
                    message = f"Proxy error: {response.status_code}"
                    self._emit_error(f"{message}: {text[:500]}" if text else message, external=True)
                    return
                if await self._consume_sse(response):
                    return
        self._emit_error(_NO_TERMINAL_TEXT)

    async def _consume_sse(self, response: httpx.Response) -> bool:
        """Read SSE events until done/error; True when a terminal event arrived."""
        data: list[str] = []
        async for line in response.aiter_lines():
            if line == "":
                if data and self._dispatch("\n".join(data)):
                    return True
                data = []
            elif line.startswith(":"):
                continue
            elif line.startswith("data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(" ") else value)
        return bool(data) and self._dispatch("\n".join(data))

    def _dispatch(self, payload: str) -> bool:
        if payload.strip() == "[DONE]":
            return False
        try:
            proxy_event = json.loads(payload)
        except ValueError:
            proxy_event = None
        if not isinstance(proxy_event, dict):
            self.invalid_payloads += 1
            logger.warning(
                "ignoring a proxy SSE payload that is not a JSON object: %.200s", payload
            )
            return False
        event = process_proxy_event(proxy_event, self._partial)
        if event is None:
            return False
        self._emit(event)
        return event.type in ("done", "error")


async def stream_proxy(
    model: Model, context: Context, options: ProxyStreamOptions
) -> ProxyStreamResponse:
    """Stream one LLM call through the proxy."""
    if isinstance(options, SimpleStreamOptions) or not isinstance(options, ProxyStreamOptions):
        raise TypeError(
            "stream_proxy needs ProxyStreamOptions; use create_proxy_stream_fn(proxy_url, "
            "auth_token) as AgentOptions.stream_fn"
        )
    return ProxyStreamResponse(model=model, context=context, options=options)


async def create_proxy_stream(
    model: Model,
    context: Context,
    auth_token: str,
    proxy_url: str,
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    reasoning: JsonValue | None = None,
    signal: Callable[[], bool] | asyncio.Event | None = None,
) -> ProxyStreamResponse:
    options = ProxyStreamOptions(
        auth_token=auth_token,
        proxy_url=proxy_url,
        temperature=temperature,
        max_tokens=max_tokens,
        reasoning=reasoning,
        signal=signal,
    )
    return ProxyStreamResponse(model=model, context=context, options=options)


def create_proxy_stream_fn(
    proxy_url: str, auth_token: str, *, reasoning: JsonValue | None = None
) -> StreamFn:
    """A ``stream_fn`` for ``AgentOptions`` that sends every LLM call through the proxy.

    ``temperature``, ``max_tokens``, ``session_id`` and the abort signal come from each call's
    ``SimpleStreamOptions``; ``api_key`` is ignored, since the proxy holds the provider keys.
    """

    async def proxy_stream_fn(
        model: Model, context: Context, options: SimpleStreamOptions
    ) -> ProxyStreamResponse:
        proxy_options = ProxyStreamOptions(
            auth_token=auth_token,
            proxy_url=proxy_url,
            temperature=options.temperature,
            max_tokens=options.max_tokens,
            reasoning=reasoning,
            signal=options.signal,
            session_id=options.session_id,
        )
        return ProxyStreamResponse(model=model, context=context, options=proxy_options)

    return proxy_stream_fn  # type: ignore[return-value]
