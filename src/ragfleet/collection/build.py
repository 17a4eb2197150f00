"""Building a collection all-or-nothing.

The collection is built in ``.NAME.building-PID/`` beside its final path (holding its own
writer lock) and renamed into place only when every document is written and checkpointed,
so a failed or killed build leaves nothing at the final path. A build that died leaves its
directory behind; the next build of the same path removes it (its pid is gone and nothing
holds its lock).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ragfleet.collection.layout import Layout
from ragfleet.collection.writer import Embedder
from ragfleet.config import CollectionConfig
from ragfleet.embed.base import Encoder
from ragfleet.errors import CollectionError, InputError
from ragfleet.index.lock import is_locked
from ragfleet.types import Document

if TYPE_CHECKING:
    from ragfleet.collection.core import Collection

Progress = Callable[[int, int], None]


def build(
    cls: type[Collection],
    path: str | Path,
    docs: Iterable[Document],
    config: CollectionConfig | None = None,
    *,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
    skip_invalid: bool = False,
) -> Collection:
    """Create and fill a collection at ``path``, which must not exist; the build's report
    (skipped documents included) is ``last_report`` of the collection returned."""
    path = Path(path)
    if path.exists():
        raise CollectionError(f"{path} already exists; choose another path or delete it")
    remove_dead_builds(path)
    tmp = Layout.of(path).build_dir(os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    col: Collection | None = None
    try:
        col = cls.create(tmp, config, encoder=encoder)
        report = col.upsert(docs, progress=progress, embedder=embedder, skip_invalid=skip_invalid)
        if report.chunks_written == 0:
            raise InputError(
                "the corpus yielded no chunks: every document was empty "
                f"({report.skipped_summary() or 'no documents'})"
            )
        col.close()
        os.rename(tmp, path)
    except BaseException:
        if col is not None:
            col.abandon()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    built = cls.open(path, encoder=col.encoder)
    built.last_report = report
    return built


def remove_dead_builds(path: Path) -> list[Path]:
    """Remove the ``.NAME.building-PID`` directories beside ``path`` left by builds whose
    process died (its pid is gone and nothing holds the build's lock)."""
    removed = []
    for tmp in Layout.of(path).build_dirs():
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and (int(pid) == os.getpid() or _pid_alive(int(pid))):
            continue
        if is_locked(tmp):
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
