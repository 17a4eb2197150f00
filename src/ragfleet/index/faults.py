"""Crash-point injection for the model-based crash tests (``tests/reliability/``).

Every durability boundary of the write path calls :func:`point` with a name: before a log
record is written and before it is fsynced, around each file of a checkpoint, before and
after the manifest's rename, before log truncation. Disarmed (always, outside tests) a
point costs one global read. Armed with :func:`crash_at`, the ``n``-th point reached raises
:class:`SimulatedCrash` — and so does every point after it until the block ends, since a
dead process makes no further writes even where a ``finally`` clause would try — and the
test then abandons the collection without closing it —
what is on disk at that moment is exactly what a process killed there would leave (the
page cache survives a process death), so reopening must find every acknowledged write.

:class:`SimulatedCrash` derives from ``BaseException`` so that no ``except Exception``
on the way up can swallow it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SimulatedCrash", "counting", "crash_at", "point"]


class SimulatedCrash(BaseException):
    """Raised at an armed crash point; the process is to be considered dead."""


class _State:
    armed: int | None = None  # crash at this point number
    dead = False  # the armed crash happened: every later point crashes too
    seen = 0
    names: list[str] | None = None  # names of the points passed, when counting


_state = _State()


def point(name: str) -> None:
    """A durability boundary: crash here if armed for it."""
    if _state.armed is None and _state.names is None:
        return
    _state.seen += 1
    if _state.names is not None:
        _state.names.append(name)
    if _state.dead:
        raise SimulatedCrash(f"the process is dead (point {_state.seen}, {name})")
    if _state.armed is not None and _state.seen >= _state.armed:
        _state.dead = True
        raise SimulatedCrash(f"simulated crash at point {_state.seen} ({name})")


@contextmanager
def crash_at(n: int) -> Iterator[None]:
    """Arm a crash at the ``n``-th point (1-based) reached inside the block."""
    if n < 1:
        raise ValueError(f"crash point numbers start at 1, got {n}")
    _state.armed, _state.seen, _state.dead = n, 0, False
    try:
        yield
    finally:
        _state.armed, _state.seen, _state.dead = None, 0, False


@contextmanager
def counting() -> Iterator[list[str]]:
    """Record the names of the points passed inside the block (none crash)."""
    names: list[str] = []
    _state.names, _state.seen = names, 0
    try:
        yield names
    finally:
        _state.names, _state.seen = None, 0
