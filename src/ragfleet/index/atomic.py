"""Atomic file replacement: write a temp file beside the target, fsync, rename, fsync the dir.

After a crash a reader sees either the old file or the new one, never a torn mix:
``os.replace`` is atomic on POSIX within one file system, which is why the temp file
lives in the target's own directory. The directory fsync makes the rename durable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ragfleet.index import faults


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's contents, or a directory's entries (a rename or create inside it),
    to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


fsync_dir = fsync_file = fsync_path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path in ``path``'s directory; on success it replaces ``path`` atomically.

    The body writes the temp file (by any means, e.g. ``faiss.write_index``); on normal
    exit it is fsynced, renamed over ``path`` and the directory is fsynced. If the body
    raises, the temp file is removed, ``path`` is left untouched and the error propagates.

    Example::

        with atomic_path(shard / "dense.faiss") as tmp:
            faiss.write_index(index, str(tmp))
    """
    target = Path(path)
    directory = target.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        faults.point(f"atomic.fsync:{target.name}")
        fsync_file(tmp)
        faults.point(f"atomic.rename:{target.name}")
        os.replace(tmp, target)
    except faults.SimulatedCrash:
        raise  # a dead process leaves its temp file behind
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    faults.point(f"atomic.renamed:{target.name}")
    fsync_dir(directory)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
