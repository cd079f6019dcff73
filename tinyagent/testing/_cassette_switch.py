"""The ``TINYAGENT_CASSETTE`` switch: make a whole notebook record or replay
(docs/notebook.md#record-and-replay).

``TINYAGENT_CASSETTE=replay:PATH`` serves the cassette at ``PATH`` instead of the demo model, and
``TINYAGENT_CASSETTE=record:PATH`` forwards every request to a real provider and appends the
exchange to ``PATH``. Unset (or empty), nothing changes. Code that starts a model server asks
:func:`cassette_brain` which brain to use::

    server = ModelServer(cassette_brain(DemoBrain())).start()   # honours TINYAGENT_CASSETTE

Recording needs a real endpoint: ``upstream=`` or ``TINYAGENT_BASE_URL`` (a full chat-completions
URL), else the default URL of ``TINYAGENT_PROVIDER`` (default ``openrouter``); the key comes from
``api_key=`` or the provider's environment variable. When ``model=`` or ``TINYAGENT_MODEL`` is
given, the request's ``model`` is replaced by it before forwarding, so a notebook written against
the demo model (``tinyagent-demo``) records a real model's answers; replay does the same
replacement (defaulting to the one model the cassette holds), so the recorded keys match.

Note for the notebook layer (owner of ``tinyagent/notebook/``): ``%agent demo`` should start
``ModelServer(cassette_brain(DemoBrain()))`` so the switch covers ``%%agent`` cells too, and
``%%agent --record PATH`` / ``--replay PATH`` can be built on :func:`cassette_brain` with
``setting=CassetteSetting("record" | "replay", PATH)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ._cassette import RecordingBrain, ReplayBrain

__all__ = ["CASSETTE_ENV", "CassetteSetting", "cassette_brain", "cassette_setting"]

CASSETTE_ENV = "TINYAGENT_CASSETTE"
_MODES = ("record", "replay")


@dataclass(frozen=True)
class CassetteSetting:
    """What the switch asks for: ``mode`` is ``record`` or ``replay``, ``path`` the cassette."""

    mode: Literal["record", "replay"]
    path: Path

    def describe(self) -> str:
        """One plain sentence for a notebook's first cell."""
        if self.mode == "replay":
            return f"Replaying the recorded cassette {self.path} (no network, no API key)."
        return f"Recording a real provider's answers into the cassette {self.path}."


def cassette_setting(env: Mapping[str, str] | None = None) -> CassetteSetting | None:
    """Parse ``TINYAGENT_CASSETTE`` (``record:PATH`` or ``replay:PATH``); None when unset.

    Anything else raises ``ValueError`` naming the variable and the accepted forms, so a typo
    never silently falls back to the demo model.
    """
    value = (os.environ if env is None else env).get(CASSETTE_ENV, "").strip()
    if not value:
        return None
    mode, sep, path = value.partition(":")
    mode = mode.strip().lower()
    if not sep or mode not in _MODES or not path.strip():
        raise ValueError(f"{CASSETTE_ENV} must be 'record:PATH' or 'replay:PATH', got {value!r}")
    return CassetteSetting(mode, Path(path.strip()).expanduser())  # type: ignore[arg-type]


class _ModelOverride:
    """Replaces the request's ``model`` before handing it to the wrapped brain."""

    def __init__(self, brain: Any, model: str) -> None:
        self.brain = brain
        self.model = model

    def __call__(self, request: dict[str, Any]) -> Any:
        return self.brain({**request, "model": self.model})

    def __getattr__(self, name: str) -> Any:  # misses, recorded, path… of the wrapped brain
        return getattr(self.brain, name)


def _recorded_model(path: Path) -> str | None:
    """The model id of the cassette's requests when they all name the same one."""
    models = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            request = json.loads(line).get("request") or {}
            models.add(request.get("model"))
    return models.pop() if len(models) == 1 else None


def _upstream_and_key(env: Mapping[str, str]) -> tuple[str, str | None]:
    # the provider's own routing tables, so recording goes where a real run would
    from tinyagent._provider_routing import PROVIDER_KEY_ENV, default_base_url, infer_api

    provider = (env.get("TINYAGENT_PROVIDER") or "openrouter").strip().lower()
    upstream = env.get("TINYAGENT_BASE_URL") or default_base_url(provider, infer_api(provider))
    key = next((env[name] for name in PROVIDER_KEY_ENV.get(provider, ()) if env.get(name)), None)
    return upstream, key


def cassette_brain(
    fallback: Any = None,
    *,
    setting: CassetteSetting | None = None,
    env: Mapping[str, str] | None = None,
    upstream: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
) -> Any:
    """The brain a model server should use: ``fallback`` (e.g. ``DemoBrain()``) unless the
    switch (or an explicit ``setting``) asks for a cassette.

    ``replay`` gives a :class:`ReplayBrain` (an unknown request is answered HTTP 500 naming the
    cassette); ``record`` gives a :class:`RecordingBrain` forwarding to ``upstream``.
    """
    environ = os.environ if env is None else env
    chosen = setting if setting is not None else cassette_setting(environ)
    if chosen is None:
        return fallback
    model = model or environ.get("TINYAGENT_MODEL") or None
    if chosen.mode == "replay":
        replay = ReplayBrain(chosen.path)
        model = model or _recorded_model(chosen.path)
        return _ModelOverride(replay, model) if model else replay
    env_upstream, env_key = _upstream_and_key(environ)
    recorder = RecordingBrain(chosen.path, upstream or env_upstream, api_key=api_key or env_key)
    return _ModelOverride(recorder, model) if model else recorder
