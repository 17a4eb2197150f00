"""The writer lock of a collection: one writing process at a time (DESIGN.md §5).

``<collection>/LOCK`` is held with ``flock(LOCK_EX | LOCK_NB)`` by the process that opened
the collection for writing, and holds that process's pid as text. A second writer is
refused at once with the holder's pid; readers never take it. The kernel releases the
lock when the holder's file descriptor closes — at :meth:`WriterLock.release` or when the
process dies, however it dies — so a crashed writer never leaves a collection locked.
The descriptor is close-on-exec, and a forked child does not inherit the right to write:
:meth:`WriterLock.held` checks the pid.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from ragfleet.errors import CollectionLockedError, StorageError

LOCK_NAME = "LOCK"


def holder_pid(directory: Path) -> int | None:
    """The pid written in ``directory/LOCK`` (the last writer's), if any."""
    try:
        text = (directory / LOCK_NAME).read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class WriterLock:
    """An acquired writer lock on ``directory``; :meth:`acquire` to take one."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd: int | None = fd
        self._pid = os.getpid()

    @classmethod
    def acquire(cls, directory: Path) -> WriterLock:
        """Take the lock or raise :class:`CollectionLockedError` naming the holder."""
        path = directory / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise StorageError(
                    f"cannot open {directory} for writing ({e.strerror}); open it read-only "
                    "(ragfleet search/stats do) or copy it to writable storage",
                    applied=False,
                ) from e
            raise StorageError(f"cannot create {path}: {e.strerror}", applied=False) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = holder_pid(directory)
            who = f"process {pid}" if pid is not None else "another process"
            raise CollectionLockedError(
                f"{directory} is open for writing by {who}; one writer at a time: stop it, "
                "send your writes through it (e.g. its HTTP API), or open read-only",
                pid,
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # the pid is a courtesy for error messages; the flock is what counts
        return cls(directory, fd)

    def held(self) -> bool:
        """Whether this process holds the lock (a forked child does not)."""
        return self._fd is not None and os.getpid() == self._pid

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if os.getpid() == self._pid:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(directory: Path) -> bool:
    """Whether a live process holds ``directory``'s writer lock (for cleaning up builds
    whose process died)."""
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
