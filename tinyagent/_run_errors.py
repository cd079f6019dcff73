"""How a run that ended in an error reaches the person who started it.

``prompt_text()`` raises :class:`AgentRunError`; ``prompt()``, ``continue_()`` and ``stream()``
keep returning the error message and its events, and every such run is logged once, at ERROR on
the ``tinyagent`` logger (Python prints that on stderr even when logging was never configured).
A caller that shows the error itself, like the notebook's cell view, sets :data:`REPORTED_BY_CALLER`
for its run so the person does not read the same error twice.

The hints name what to change for the errors people cause most: a missing key, a URL that is not
the chat-completions endpoint, a server that is not running.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from typing import Any

from .agent_types import AssistantMessage

__all__ = ["AgentRunError", "REPORTED_BY_CALLER", "error_hint", "log_run_error"]

logger = logging.getLogger("tinyagent")

#: True while a caller renders the run's error itself (no log line then).
REPORTED_BY_CALLER: ContextVar[bool] = ContextVar("tinyagent_error_reported", default=False)

_MISSING_KEY = re.compile(r"No API key provided for provider: (\S+)")
_HTTP_404 = re.compile(r"\b404\b|Not Found", re.IGNORECASE)
_REFUSED = re.compile(r"connection refused|connect error|error sending request|tcp connect", re.I)
_DEMO = (
    "or try the offline demo model, no key needed: tinyagent.testing.ModelServer(DemoBrain()) "
    "(see the README's Quickstart)"
)


class AgentRunError(RuntimeError):
    """A run ended with ``stop_reason == "error"``; ``message`` is its final assistant message."""

    def __init__(self, message: AssistantMessage, model: Any = None) -> None:
        self.message = message
        self.error_message = message.error_message or "the run ended in an error"
        self.hint = error_hint(self.error_message, model)
        text = self.error_message if self.hint is None else f"{self.error_message}\n{self.hint}"
        super().__init__(text)


def error_hint(error_message: str, model: Any = None) -> str | None:
    """What to do about an error message, where that is known; else ``None``."""
    url = getattr(model, "base_url", None) or None
    missing = _MISSING_KEY.search(error_message)
    if missing:
        from ._provider_routing import PROVIDER_KEY_ENV

        provider = missing.group(1)
        variables = PROVIDER_KEY_ENV.get(provider.lower(), ())
        where = " or ".join(variables) if variables else "the provider's key variable"
        return (
            f"Hint: set {where} in the environment (or pass api_key= / get_api_key=), {_DEMO}."
        )
    if _REFUSED.search(error_message):
        tried = f" at {url}" if url else ""
        return f"Hint: nothing answered{tried}; check that the server is running and the URL."
    if _HTTP_404.search(error_message):
        tried = f" (tried {url})" if url else ""
        return (
            f"Hint: no chat-completions endpoint answered{tried}; base_url must be the full "
            "chat-completions URL (e.g. https://api.openai.com/v1/chat/completions) or the API "
            "base it lives under (e.g. http://localhost:8000/v1)."
        )
    return None


def log_run_error(message: AssistantMessage, model: Any = None) -> None:
    """Log a run's error once, unless its caller reports it to the person itself."""
    if REPORTED_BY_CALLER.get():
        return
    text = message.error_message or "the run ended in an error"
    hint = error_hint(text, model)
    logger.error("agent run failed: %s%s", text, f"\n{hint}" if hint else "")
