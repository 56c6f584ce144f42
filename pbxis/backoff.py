"""Capped exponential backoff with full jitter, as an immutable value.

Pure: the random source is injected. Imports nothing from pbxis (layer 0).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (0-based).

    ``delay(n)`` is uniform in ``[base * 2**n * (1 - jitter), base * 2**n]``,
    capped at ``cap``. With ``jitter=1.0`` this is AWS "full jitter".
    """

    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base or not 0.0 <= self.jitter <= 1.0:
            raise ValueError("need 0 < base <= cap and 0 <= jitter <= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (0-based)."""
        ceiling = min(self.cap, self.base * (2.0 ** min(attempt, 62)))
        return ceiling * (1.0 - self.jitter * self.rand())
