"""Brains decide what the loopback server answers: :class:`ScriptedBrain` and the coercion rules.

A brain is any callable ``(request_json: dict) -> Reply | str | dict`` (an ``async`` one works
too). It runs on the server's event-loop thread, so it must be quick; for slowness use
``Reply.delay`` or a :class:`Fault`, which never block other connections.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeAlias

from ._reply import Reply

__all__ = ["Brain", "ScriptExhausted", "ScriptedBrain", "Turn", "as_brain"]

#: One scripted turn: a Reply, plain text, a dict of Reply fields, or a function of the request.
Turn: TypeAlias = Reply | str | Mapping[str, Any] | Callable[[dict[str, Any]], Any]


class Brain(Protocol):
    def __call__(self, request: dict[str, Any]) -> Reply | str | Mapping[str, Any] | Awaitable[Any]:
        ...


class ScriptExhausted(RuntimeError):
    """A :class:`ScriptedBrain` got more requests than it has turns (served as HTTP 500)."""


class ScriptedBrain:
    """Answers from a script: a list of turns consumed one per request, or one function.

    ``ScriptedBrain([Reply(fault=Fault.http(503)), "ok"])`` fails the first request and answers
    the second. A turn may be a function ``(request_json) -> Reply | str``. When the turns run
    out, ``when_exhausted="error"`` (the default) answers HTTP 500 with a message naming the
    request, so an unexpected extra request fails loudly; ``"repeat"`` serves the last turn
    again. ``ScriptedBrain(fn)`` calls ``fn`` for every request. ``requests`` keeps the request
    bodies the brain has seen, in order.
    """

    def __init__(
        self,
        turns: Sequence[Turn] | Callable[[dict[str, Any]], Any],
        *,
        when_exhausted: Literal["error", "repeat"] = "error",
    ) -> None:
        if when_exhausted not in ("error", "repeat"):
            raise ValueError("when_exhausted must be 'error' or 'repeat'")
        if callable(turns) and not isinstance(turns, Sequence):
            self._turns: list[Turn] = [turns]
            when_exhausted = "repeat"
        elif isinstance(turns, str | bytes | Reply) or not isinstance(turns, Sequence):
            raise TypeError("ScriptedBrain takes a list of turns or a function (request) -> Reply")
        else:
            self._turns = [self._check(t) for t in turns]
            if not self._turns:
                raise ValueError("ScriptedBrain needs at least one turn")
        self.when_exhausted = when_exhausted
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @staticmethod
    def _check(turn: Any) -> Turn:
        if isinstance(turn, Reply | str) or callable(turn):
            return turn  # type: ignore[no-any-return]
        if isinstance(turn, Mapping):
            return Reply.from_dict(turn)
        raise TypeError(f"a scripted turn must be a Reply, str, dict or function, got "
                        f"{type(turn).__name__}")

    @property
    def calls(self) -> int:
        """How many requests the brain has answered."""
        return len(self.requests)

    @property
    def remaining(self) -> int | None:
        """Turns not yet used (None when the last turn repeats forever)."""
        if self.when_exhausted == "repeat":
            return None
        return max(0, len(self._turns) - self.calls)

    def __call__(self, request: dict[str, Any]) -> Any:
        with self._lock:
            position = len(self.requests)
            self.requests.append(request)
        if position >= len(self._turns):
            if self.when_exhausted == "error":
                raise ScriptExhausted(
                    f"ScriptedBrain has {len(self._turns)} turn(s) but this is request "
                    f"#{position + 1}; add turns or use when_exhausted='repeat'")
            position = len(self._turns) - 1
        turn = self._turns[position]
        if callable(turn) and not isinstance(turn, Reply):
            return turn(request)
        return turn

    def to_dict(self) -> dict[str, Any]:
        """JSON form for a server in another process (only Reply/str/dict turns)."""
        turns = []
        for turn in self._turns:
            if isinstance(turn, str):
                turns.append({"text": turn})
            elif isinstance(turn, Reply):
                turns.append(turn.to_dict())
            else:
                raise TypeError("a ScriptedBrain with function turns cannot be sent to "
                                "another process; use an importable 'module:factory' brain")
        return {"turns": turns, "when_exhausted": self.when_exhausted}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScriptedBrain:
        turns = data.get("turns")
        if not isinstance(turns, list):
            raise ValueError("a script must be {'turns': [...], 'when_exhausted': ...} or a list")
        return cls([Reply.from_dict(t) for t in turns],
                   when_exhausted=data.get("when_exhausted", "error"))


def as_brain(value: Any) -> Brain:
    """Turn what ``ModelServer(brain)`` accepts into a brain.

    None → :class:`DemoBrain`; a Reply or str → served for every request; a list → a
    :class:`ScriptedBrain`; a callable → used as is.
    """
    if value is None or value == "demo":
        from ._demo import DemoBrain

        return DemoBrain()
    if isinstance(value, Reply | str):
        return ScriptedBrain([value], when_exhausted="repeat")
    if isinstance(value, Sequence):
        return ScriptedBrain(value)
    if callable(value):
        return value  # type: ignore[no-any-return]
    raise TypeError(f"not a brain: {value!r} (use a Reply, a list of turns or a function)")
