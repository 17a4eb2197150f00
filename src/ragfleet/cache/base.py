"""The one protocol every cache backend implements, and the counters it reports.

Values are opaque ``bytes``: callers serialise with JSON (results, answers) or numpy's
raw little-endian buffers (vectors) — never pickle. Keys are strings built by
:mod:`ragfleet.cache.keys`, which put every input that changes the answer (including the
collection's generation) into the key, so a backend never has to invalidate by scanning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ragfleet.errors import ConfigError, InputError


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one backend since it was created.

    ``hits``/``misses`` count ``get`` calls; ``sets`` counts stored values; ``evictions``
    counts entries dropped to respect a budget (not TTL expiries); ``errors`` counts calls
    that failed inside the backend and were degraded to a miss / no-op; ``bytes`` is the
    size of the values currently held where the backend can know it cheaply (see each
    backend's docstring).
    """

    hits: int = 0
    misses: int = 0
    sets: int = 0
    evictions: int = 0
    errors: int = 0
    bytes: int = 0

    @property
    def hit_rate(self) -> float:
        """``hits / (hits + misses)``, 0.0 before the first ``get``."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@runtime_checkable
class CacheBackend(Protocol):
    """A key → bytes store with optional per-entry TTL.

    Implementations are thread-safe. A backend failure never raises to the caller of
    ``get``/``set``/``delete``: it is degraded to a miss or a no-op and counted in
    ``stats().errors``. Invalid arguments (a non-bytes value, a non-positive TTL) do raise.
    """

    def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or ``None`` when absent, expired or unreachable."""
        ...

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl_s`` seconds (``None``: the default TTL)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def clear(self) -> None:
        """Remove every entry this backend owns."""
        ...

    def stats(self) -> CacheStats:
        """A snapshot of the counters."""
        ...


def check_value(value: bytes) -> None:
    """Raise :class:`InputError` unless ``value`` is ``bytes`` (JSON-encode it first)."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InputError(
            f"cache values must be bytes, got {type(value).__name__}; "
            "serialise with json.dumps(...).encode() first"
        )


def check_ttl(ttl_s: float | None, what: str = "ttl_s") -> None:
    """Raise :class:`ConfigError` unless ``ttl_s`` is ``None`` or a positive number."""
    if ttl_s is not None and not ttl_s > 0:
        raise ConfigError(f"{what} must be None (no expiry) or > 0 seconds, got {ttl_s!r}")
