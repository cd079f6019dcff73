"""How fast and how far a batch may go: the request gate, the budget, the retry back-off.

:class:`RateLimiter` is awaited before every LLM request of every row (each turn of a tool loop
included; the row runner wraps the stream function): it spaces requests for
``requests_per_minute``, holds them while the ``tokens_per_minute`` bucket is empty (tokens are
counted from each finished turn's usage, so a request may overdraw the bucket and the next ones
wait), and holds every new request while the batch is paused after an HTTP 429. At most
``concurrency`` rows are in flight: that is the scheduler's own count (``run_rows``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Budget", "RateLimiter", "backoff_delay"]


@dataclasses.dataclass(frozen=True)
class Budget:
    """Stop starting rows once this run has used ``tokens`` tokens or ``usd`` dollars (rows in
    flight finish; the rest are "not run: budget")."""

    tokens: int | None = None
    usd: float | None = None

    def __post_init__(self) -> None:
        if self.tokens is not None and (isinstance(self.tokens, bool) or self.tokens < 0):
            raise ValueError("Budget.tokens must be a non-negative int")
        if self.usd is not None and (isinstance(self.usd, bool) or self.usd < 0):
            raise ValueError("Budget.usd must be a non-negative number")

    @classmethod
    def of(cls, value: Any) -> Budget | None:
        """``budget=``: an int is tokens, a float is US dollars, or a Budget."""
        if value is None or isinstance(value, Budget):
            return value
        if isinstance(value, bool):
            raise TypeError("budget must be an int (tokens), a float (USD) or a Budget")
        if isinstance(value, int):
            return cls(tokens=value)
        if isinstance(value, float):
            return cls(usd=value)
        raise TypeError(
            f"budget must be an int (tokens), a float (USD) or a Budget, got {type(value).__name__}"
        )

    def reached(self, tokens: int, usd: float) -> bool:
        return (self.tokens is not None and tokens >= self.tokens) or (
            self.usd is not None and usd >= self.usd
        )


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 8.0) -> float:
    """Exponential back-off before retry ``attempt`` (1-based), jittered ±20 %."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * random.uniform(0.8, 1.2)


class RateLimiter:
    """The gate every request of a batch passes (one per batch, or per Ray worker)."""

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("requests_per_minute", requests_per_minute),
                            ("tokens_per_minute", tokens_per_minute)):
            if value is not None and (isinstance(value, bool) or value <= 0):
                raise ValueError(f"{name} must be a positive number")
        self.clock = clock
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next_slot = float("-inf")
        self.tokens_per_second = tokens_per_minute / 60.0 if tokens_per_minute else 0.0
        self._capacity = float(tokens_per_minute or 0)
        self._level = self._capacity
        self._filled_at = clock()
        self.paused_until = float("-inf")

    @property
    def idle(self) -> bool:
        """True when the gate can never make anyone wait (no limits, no pause)."""
        return not self.interval and not self.tokens_per_second and self.paused_until < self.clock()

    def pause(self, seconds: float) -> None:
        """Hold every new request of the batch for ``seconds`` from now (after an HTTP 429)."""
        if seconds > 0:
            self.paused_until = max(self.paused_until, self.clock() + seconds)

    def record_tokens(self, tokens: int) -> None:
        if self.tokens_per_second and tokens > 0:
            self._refill()
            self._level -= tokens

    def _refill(self) -> None:
        now = self.clock()
        self._level = min(self._capacity, self._level + (now - self._filled_at) * self.tokens_per_second)
        self._filled_at = now

    async def acquire(self) -> None:
        """Wait until a request may go out."""
        while True:
            now = self.clock()
            wait = self.paused_until - now
            if self.tokens_per_second:
                self._refill()
                if self._level <= 0:
                    wait = max(wait, -self._level / self.tokens_per_second + 0.001)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if not self.interval:
                return
            # claim the next free slot, then wait for it; a pause that began meanwhile wins
            slot = max(self._next_slot, now)
            self._next_slot = slot + self.interval
            if slot > now:
                await asyncio.sleep(slot - now)
                if self.paused_until > self.clock():
                    continue
            return
