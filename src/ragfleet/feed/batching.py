"""The feed's batch size: additive increase, multiplicative decrease (AIMD; Chiu & Jain,
1989) between a floor and a ceiling.

Index-time and query-time batching want opposite sizes: bigger batches embed more chunks
per second, smaller ones make each document searchable sooner. After a batch that took
``t`` seconds for ``n`` entries and ``tokens`` estimated tokens:

    n_next = max(floor, n // 2)                 if t > target_s or tokens > max_tokens
    n_next = min(ceiling, n + step)             otherwise

so the size climbs toward the ceiling while a batch stays inside its latency target (the
freshness it adds) and halves when it does not.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ragfleet.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """``floor``/``ceiling``: entries per batch; ``target_s``: the longest a batch may take
    before the size halves; ``max_tokens``: the encoder's budget per batch (tokens are
    estimated as characters / 4)."""

    floor: int = 8
    ceiling: int = 512
    step: int = 16
    target_s: float = 1.0
    max_tokens: int = 262_144

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= self.ceiling <= 10_000:
            raise ConfigError(
                f"batch sizes need 1 <= floor <= ceiling <= 10000, got {self.floor}..{self.ceiling}"
            )
        if self.step < 1 or self.target_s <= 0 or self.max_tokens < 1:
            raise ConfigError("batch step, target_s and max_tokens must be positive")


class AdaptiveBatch:
    """The current batch size under a :class:`BatchPolicy`; thread-safe."""

    def __init__(self, policy: BatchPolicy) -> None:
        self.policy = policy
        self._size = policy.floor
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    def observe(self, n: int, seconds: float, tokens: int) -> int:
        """Update after a batch of ``n`` entries; returns the next size."""
        p = self.policy
        with self._lock:
            if seconds > p.target_s or tokens > p.max_tokens:
                self._size = max(p.floor, min(self._size, max(n, 1)) // 2)
            elif n >= self._size:  # only a full batch says the size could grow
                self._size = min(p.ceiling, self._size + p.step)
            return self._size


def estimate_tokens(text: str) -> int:
    """About four characters a token for English WordPiece text."""
    return len(text) // 4 + 1
