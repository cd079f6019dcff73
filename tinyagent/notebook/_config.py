"""Configuration resolution for the notebook layer
(docs/notebook.md#configuration, docs/notebook.md#keys).

Precedence, highest first: magic options (sticky ones live on the conversation) →
``%agent config key=value`` (session settings) → traitlets (``%config AgentMagics.model``) →
environment (``TINYAGENT_MODEL``, ``TINYAGENT_BASE_URL``, ``TINYAGENT_PROVIDER``) → built-in default.

API keys are never read into this module's results: only the *name* of the variable that supplies
the key and whether it is set. The provider reads the value from the environment itself
(docs/architecture.md#api-keys), so no key string ever passes through notebook state, outputs or
reprs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._provider_routing import PROVIDER_KEY_ENV, key_required

DEFAULT_PROVIDER = "openrouter"
DEFAULT_MODEL = "moonshotai/kimi-k2.5"

#: provider (lowercased) → environment variables that may hold its key, first wins: the
#: provider's own table (docs/architecture.md#api-keys), so the notebook names exactly what the
#: core reads.
PROVIDER_KEY_VARS: dict[str, tuple[str, ...]] = PROVIDER_KEY_ENV

#: settings ``%agent config key=value`` accepts, with their converters
SESSION_KEYS = (
    "model",
    "provider",
    "base_url",
    "system",
    "temperature",
    "max_tokens",
    "tool_output_limit",  # characters per kernel-tool output (--kernel)
    "image_max_side",  # pixels: run_python's images are downscaled to this before sending
)
_POSITIVE_INTEGERS = ("max_tokens", "tool_output_limit", "image_max_side")
ENV_VARS = {
    "model": "TINYAGENT_MODEL",
    "base_url": "TINYAGENT_BASE_URL",
    "provider": "TINYAGENT_PROVIDER",
}
_SECRET_NAME = re.compile(r"(api[_-]?key|token|secret|password|authorization)", re.IGNORECASE)


def load_dotenv(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """Load ``.env`` from ``directory`` (default: the working directory) without overriding.

    Returns the names that were set (never values). Lines are ``NAME=value``, optionally prefixed
    by ``export``; ``#`` starts a comment line; single or double quotes around the value are removed.
    """
    path = Path(directory or os.getcwd()) / ".env"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    loaded: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if name not in os.environ:
            os.environ[name] = value
            loaded.append(name)
    return loaded


def key_variables(provider: str) -> tuple[str, ...]:
    """The environment variables that hold ``provider``'s key; ``()`` for custom providers."""
    return PROVIDER_KEY_VARS.get(provider.strip().lower(), ())


def key_source(provider: str, environ: Mapping[str, str] | None = None) -> tuple[str | None, bool]:
    """``(variable, is_set)``: the variable that supplies (or would supply) the key.

    ``(None, False)`` for a provider outside the table, which may need no key at all.
    """
    env = os.environ if environ is None else environ
    names = key_variables(provider)
    for name in names:
        if env.get(name):
            return name, True
    return (names[0], False) if names else (None, False)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


@dataclass
class Resolved:
    """The effective settings of one run, with where each came from (for ``%agent config``)."""

    model: str
    provider: str
    base_url: str | None
    system: str | None
    temperature: float | None
    max_tokens: int | None
    sources: dict[str, str] = field(default_factory=dict)
    explicit: bool = False  # anything configured beyond the built-in defaults

    @property
    def key_variable(self) -> str | None:
        return key_source(self.provider)[0]

    @property
    def key_is_set(self) -> bool:
        return key_source(self.provider)[1]

    def missing_key_message(self) -> str | None:
        """The user-facing text when the run would fail for want of a key, else ``None``: a
        known provider without its key, unless ``base_url`` is a loopback or private-network
        server, which the core reaches without one (the core's rule, via ``key_required``)."""
        variable, present = key_source(self.provider)
        if variable is None or present or not key_required(self.provider, self.base_url):
            return None
        return (
            f"No API key for provider '{self.provider}': set the environment variable {variable} "
            f"(or put it in a .env file in the working directory), or run `%agent demo` to start "
            f"the offline demo model instead."
        )


def convert_setting(name: str, value: str) -> str | float | int | None:
    """Parse one ``%agent config`` value; a clear ``ValueError`` for bad input."""
    if name not in SESSION_KEYS:
        if is_secret_name(name):
            raise ValueError(
                "API keys are read from the environment only (never from %agent config); "
                "set the provider's variable, e.g. in a .env file."
            )
        raise ValueError(f"unknown setting '{name}'; known: {', '.join(SESSION_KEYS)}")
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if text.lower() in ("", "none", "default"):
        return None
    if name == "temperature":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"temperature must be a number, got {text!r}") from None
    if name in _POSITIVE_INTEGERS:
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {text!r}") from None
        if number <= 0:
            raise ValueError(f"{name} must be positive")
        return number
    return text


def resolve(
    *layers: tuple[str, Mapping[str, object]],
    environ: Mapping[str, str] | None = None,
) -> Resolved:
    """Merge ``(source_name, settings)`` layers, highest priority first, then env and defaults.

    ``None`` and ``""`` in a layer mean "not set there".
    """
    env = os.environ if environ is None else environ
    chosen: dict[str, object] = {}
    sources: dict[str, str] = {}
    for source, settings in layers:
        for name, value in settings.items():
            if name in chosen or value is None or value == "":
                continue
            chosen[name] = value
            sources[name] = source
    for name, variable in ENV_VARS.items():
        if name not in chosen and env.get(variable):
            chosen[name] = env[variable]
            sources[name] = f"env {variable}"
    explicit = bool(chosen)
    provider = str(chosen.get("provider") or DEFAULT_PROVIDER).strip()
    sources.setdefault("provider", "default")
    model = str(chosen.get("model") or DEFAULT_MODEL)
    sources.setdefault("model", "default")
    base_url = chosen.get("base_url")
    temperature = chosen.get("temperature")
    max_tokens = chosen.get("max_tokens")
    system = chosen.get("system")
    return Resolved(
        model=model,
        provider=provider,
        base_url=str(base_url) if base_url else None,
        system=str(system) if system is not None else None,
        temperature=float(temperature) if temperature is not None else None,  # type: ignore[arg-type]
        max_tokens=int(max_tokens) if max_tokens is not None else None,  # type: ignore[call-overload]
        sources=sources,
        explicit=explicit,
    )


def render_mode(user_ns: Mapping[str, object] | None = None, shell: object = None) -> str:
    """``final``, ``live`` or ``text`` (docs/notebook.md#render-modes).

    ``TINYAGENT_RENDER`` wins. Without a kernel (plain IPython terminal) the answer streams to
    stdout. In a kernel the mode is live only when a front end is known to be attached.
    """
    forced = os.environ.get("TINYAGENT_RENDER", "").strip().lower()
    if forced in ("final", "live", "text"):
        return forced
    if shell is not None and getattr(shell, "kernel", None) is None:
        return "text"
    if os.environ.get("JPY_SESSION_NAME"):
        return "live"
    if user_ns is not None and "__vsc_ipynb_file__" in user_ns:
        return "live"
    if os.environ.get("PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING") == "1":
        return "live"
    if os.environ.get("COLAB_RELEASE_TAG"):
        return "live"
    return "final"
