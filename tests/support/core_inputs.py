"""The three input dicts of ``tinyagent._alchemy``'s stream functions, as the tests build them.

``model_for(url)`` is a custom (``local``) provider on the OpenAI-compatible api, which needs no
key; ``context(text)`` is one user message, no system prompt and no tools; keyword arguments
override or add fields.
"""

from __future__ import annotations

from typing import Any


def model_for(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": "test-model",
        "provider": "local",
        "api": "openai-completions",
        "base_url": url,
        "name": None,
        "headers": None,
        "reasoning": False,
        "context_window": None,
        "max_tokens": None,
        **fields,
    }


def context(text: str = "hi", **fields: Any) -> dict[str, Any]:
    return {
        "system_prompt": "",
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        "tools": None,
        **fields,
    }


def options(**fields: Any) -> dict[str, Any]:
    return {"api_key": None, "temperature": None, "max_tokens": None, **fields}
