"""Model-independent routing tables and checks of the built-in provider
(docs/architecture.md#routing, docs/architecture.md#api-keys).

Which api and URL a provider gets, where its key comes from, what the context dict handed to the
core looks like, which image URLs the wire can carry, and which secrets are scrubbed from errors.
``tinyagent.alchemy_provider`` combines these with the model's own fields.
"""

from __future__ import annotations

import binascii
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from tinyagent.agent_types import Context, SimpleStreamOptions, ThinkingLevel, dump_model_dumpable

DEFAULT_OPENAI_COMPAT_CHAT_COMPLETIONS_URL = "https://api.openai.com/v1/chat/completions"

_CHAT_COMPLETIONS_URLS = {
    "openai": "https://api.openai.com/v1/chat/completions",
    "openrouter": "https://openrouter.ai/api/v1/chat/completions",
    "minimax": "https://api.minimax.io/v1/chat/completions",
    "minimax-cn": "https://api.minimax.chat/v1/chat/completions",
}
# On anthropic-messages the URL is the API root; alchemy-llm appends /v1/messages
# (docs/wire.md#endpoint).
_ANTHROPIC_API_ROOTS = {
    "anthropic": "https://api.anthropic.com",
    "kimi": "https://api.kimi.com/coding",
}
#: Legacy api names. The core maps the same ones (``tinyagent._alchemy.normalize_api``); the
#: tests compare the two over every alias and provider (tests/test_routing_agreement.py).
_API_ALIASES = {
    "openai": "openai-completions",
    "openai-compatible": "openai-completions",
    "chat-completions": "openai-completions",
    "openrouter": "openai-completions",
    "minimax": "minimax-completions",
}
ANTHROPIC_MESSAGES = "anthropic-messages"

#: Environment variables holding each known provider's key, in lookup order
#: (docs/architecture.md#api-keys).
PROVIDER_KEY_ENV: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "minimax": ("MINIMAX_API_KEY",),
    "minimax-cn": ("MINIMAX_CN_API_KEY",),
    "anthropic": ("ANTHROPIC_OAUTH_TOKEN", "ANTHROPIC_API_KEY"),
    "groq": ("GROQ_API_KEY",),
    "cerebras": ("CEREBRAS_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "google": ("GEMINI_API_KEY",),
    "kimi": ("KIMI_API_KEY",),
    "zai": ("ZAI_API_KEY",),
    "featherless": ("FEATHERLESS_API_KEY",),
    "vercel-ai-gateway": ("AI_GATEWAY_API_KEY",),
    "chutes": ("CHUTES_API_KEY",),
}

_SENDABLE_ROLES = frozenset({"user", "assistant", "tool_result"})
_DATA_URL = re.compile(r"data:([^;,]+)((?:;[^;,]*)*?);base64,(.*)", re.DOTALL)
MASK = "***"


def infer_api(provider: str) -> str:
    """The api a provider speaks when none is given (docs/architecture.md#routing)."""
    provider = provider.strip().lower()
    if provider in ("minimax", "minimax-cn"):
        return "minimax-completions"
    if provider in _ANTHROPIC_API_ROOTS:
        return ANTHROPIC_MESSAGES
    return "openai-completions"


def default_base_url(provider: str, api: str) -> str:
    """The endpoint used when the model names none (docs/architecture.md#routing)."""
    provider = provider.strip().lower()
    if api == ANTHROPIC_MESSAGES:
        return _ANTHROPIC_API_ROOTS.get(provider, _ANTHROPIC_API_ROOTS["anthropic"])
    return _CHAT_COMPLETIONS_URLS.get(provider, DEFAULT_OPENAI_COMPAT_CHAT_COMPLETIONS_URL)


def resolve_api_key(provider: str, options: SimpleStreamOptions) -> str | None:
    """``options.api_key`` when truthy, else the provider's environment variable, else ``None``.

    Whether ``None`` is acceptable is not decided here but by the core (see :func:`key_required`).
    """
    if options.api_key:
        return options.api_key
    for variable in PROVIDER_KEY_ENV.get(provider.lower(), ()):
        value = os.environ.get(variable)
        if value:
            return value
    return None


def key_required(provider: str, base_url: str | None = None, api: str = "") -> bool:
    """Whether the core refuses to start this route without a key (``No API key provided for
    provider: <p>``): a known provider needs its key, except on the chat-completions transport
    toward a loopback or private-network ``base_url``. The rule is the core's own
    (``tinyagent._alchemy.api_key_required``), so pre-flight checks cannot drift from it.
    ``base_url`` ``None`` or blank means the provider's default endpoint.
    """
    # Imported here: this module (and the notebook's config) stay importable without the
    # compiled core, which only the stream itself needs.
    from tinyagent import _alchemy

    route = str(provider or "").strip() or "openai"
    api = canonical_api(api, route)
    url = (base_url or "").strip() or default_base_url(route, api)
    return _alchemy.api_key_required(route, api, url)


def reasoning_effort(value: object) -> str | None:
    """A reasoning effort from an options value or thinking level; ``None`` when off or unset."""
    if value is None:
        return None
    text = value.value if isinstance(value, ThinkingLevel) else str(value)
    text = text.strip().lower()
    return None if not text or text == ThinkingLevel.OFF.value else text


def build_context_dict(context: Context, api: str) -> dict[str, Any]:
    messages = []
    for index, message in enumerate(context.messages or []):
        if isinstance(message, BaseModel):  # skips the slow runtime Protocol check
            dumped = message.model_dump(exclude_none=True)
        else:
            dumped = dump_model_dumpable(message, where="context.messages")
        role = dumped.get("role")
        if role not in _SENDABLE_ROLES:
            raise ValueError(f"context.messages[{index}]: unsupported role '{role}'")
        _check_images(dumped, index, api)
        messages.append(dumped)
    tools = None
    if context.tools:
        tools = [
            {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters or {"type": "object", "properties": {}},
            }
            for tool in context.tools
        ]
    return {"system_prompt": context.system_prompt or "", "messages": messages, "tools": tools}


def _check_images(message: dict[str, Any], index: int, api: str) -> None:
    content = message.get("content")
    if not isinstance(content, list):
        return
    for position, block in enumerate(content):
        if isinstance(block, dict) and block.get("type") == "image":
            problem = _image_problem(block.get("url"), api)
            if problem:
                raise ValueError(f"context.messages[{index}].content[{position}]: {problem}")


def _image_problem(url: object, api: str) -> str | None:
    """Why an image block cannot go on the wire, or ``None`` when it can (docs/wire.md#messages)."""
    if not isinstance(url, str) or not url.strip():
        return "image block has no URL"
    if url[:5].lower() == "data:":
        match = _DATA_URL.fullmatch(url)
        if match is None:
            return "malformed data URL: expected data:<mime>;base64,<data>"
        mime, payload = match.group(1).strip().lower(), match.group(3)
        if not mime.startswith("image/"):
            return f"data URL is not an image: {mime}"
        try:
            if not payload or not binascii.a2b_base64(payload, strict_mode=True):
                return "data URL has no image data"
        except binascii.Error:
            return "data URL payload is not valid base64"
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "image URL must be an http(s) URL or a data:<mime>;base64,... URL"
    if api == ANTHROPIC_MESSAGES:
        return "the anthropic-messages API cannot carry image URLs; use a data: URL"
    return None


def make_scrubber(secrets: list[str | None]) -> Callable[[str], str]:
    """Replaces every exact secret string by ``***`` (global rules: secrets never leak)."""
    present = [s for s in secrets if s]
    if not present:
        return lambda text: text

    def scrub(text: str) -> str:
        for secret in present:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    return scrub


_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|cookie", re.IGNORECASE)


def credential_headers(*header_sets: dict[str, str] | None) -> list[str]:
    """Values of headers that carry credentials, without an auth scheme such as ``Bearer``.

    Only these are scrubbed from error texts: scrubbing every header value would also blank out
    innocuous short values (``"1"``) wherever they occur in a message.
    """
    found = []
    for headers in header_sets:
        for name, value in (headers or {}).items():
            if _CREDENTIAL_HEADER.search(name) and isinstance(value, str):
                found.append(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.isalpha():
                    found.append(credential)
    return [value for value in found if len(value) >= 6]


def canonical_api(raw_api: str, provider: str) -> str:
    """``model.api`` normalized: lowercased, legacy aliases mapped, blank inferred from the provider."""
    api = str(raw_api or "").strip().lower()
    api = _API_ALIASES.get(api, api)
    return api or infer_api(provider)
