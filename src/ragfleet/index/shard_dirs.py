"""A shard's directory across a swap: compaction builds a shard beside the live one and
swaps it in with two renames (``path → path.old``, ``path.ready → path``); these helpers
finish or undo a swap a crash interrupted, find a shard for a reader that must not, and
tell two directories of the same name apart.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ragfleet.index.atomic import fsync_dir


def incarnation(path: Path) -> tuple[int, int]:
    """Identifies a shard directory: a compaction swaps in another one under the same name."""
    st = os.stat(path) if path.exists() else None
    return (st.st_dev, st.st_ino) if st is not None else (0, 0)


def recover_swap(path: Path) -> None:
    """Finish or undo a :meth:`Shard.swap_in` (or a compaction) a crash interrupted:
    ``path.compacting`` (incomplete) is removed; if ``path`` is missing, ``path.ready``
    (complete) or else ``path.old`` takes its place; leftovers are removed (a ``.ready``
    beside a live ``path`` holds the same acknowledged state, built while writes waited)."""
    old = path.with_name(path.name + ".old")
    ready = path.with_name(path.name + ".ready")
    shutil.rmtree(path.with_name(path.name + ".compacting"), ignore_errors=True)
    if not path.exists():
        for candidate in (ready, old):
            if candidate.exists():
                os.rename(candidate, path)
                fsync_dir(path.parent)
                break
    shutil.rmtree(ready, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def resolve_shard_dir(path: Path) -> Path:
    """Where a reader finds a shard whose swap a crash interrupted (``recover_swap``
    without writing): ``path``, else ``path.ready``, else ``path.old``."""
    for candidate in (
        path,
        path.with_name(path.name + ".ready"),
        path.with_name(path.name + ".old"),
    ):
        if candidate.exists():
            return candidate
    return path
