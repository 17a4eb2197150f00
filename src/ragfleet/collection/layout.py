"""The directory layout of a collection — the only code that knows its names.

::

    <collection>/
      LOCK                  the writer's lock (flock) with its pid   (index/lock.py)
      CURRENT               the live generation's name, switched atomically
      collection.json       the root generation (every collection before its first reindex)
      shard-NNN/            the root generation's shards
      gen-NNNNNN/           a later generation: collection.json, shard-NNN/, READY once
                            verified, centroids.npy/json when placed by centroids

A collection either holds one generation directly (``root``) or points at one with
``CURRENT``; :meth:`Layout.current` follows the pointer, so every opener (Collection,
Fleet, the service, reindex, reshard) lands on the same live generation. Beside the
collection, ``.NAME.building-PID/`` is a build in progress.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ragfleet.errors import CollectionError

CURRENT = "CURRENT"
READY = "READY"
INFO = "collection.json"
ROOT = "root"
_GEN_RE = re.compile(r"^gen-(\d{6})$")


@dataclass(frozen=True)
class Layout:
    """The names inside the collection directory ``root``."""

    root: Path

    @classmethod
    def of(cls, path: str | Path) -> Layout:
        return cls(Path(path))

    # -- generations ----------------------------------------------------------------------
    def current_name(self) -> str:
        """The live generation's name: ``CURRENT``'s content, or ``root`` without one."""
        pointer = self.root / CURRENT
        if not pointer.is_file():
            return ROOT
        name = pointer.read_text("utf-8").strip()
        if not _GEN_RE.match(name) or not (self.root / name).is_dir():
            raise CollectionError(
                f"{pointer} names {name!r}, which is not a generation directory of "
                f"{self.root}; point it at an existing gen-NNNNNN (see `ragfleet generations`)"
            )
        return name

    def generation(self, name: str) -> Path:
        return self.root if name == ROOT else self.root / name

    def current(self) -> Path:
        """The directory of the live generation (``root`` itself for a single one)."""
        return self.generation(self.current_name())

    def names(self) -> list[str]:
        """Every generation, oldest first (``root`` first when it holds one)."""
        if not self.root.is_dir():
            return []
        gens = sorted(p.name for p in self.root.iterdir() if _GEN_RE.match(p.name) and p.is_dir())
        return ([ROOT] if (self.root / INFO).is_file() else []) + gens

    def next_name(self) -> str:
        """The name a new generation gets: one past the highest existing number."""
        numbers = [int(m.group(1)) for n in self.names() if (m := _GEN_RE.match(n))]
        return f"gen-{max([*numbers, 1]) + 1:06d}"

    def is_ready(self, name: str) -> bool:
        return name == ROOT or (self.generation(name) / READY).exists()

    def building(self) -> str | None:
        """The newest generation still being built (no ``READY``), if any."""
        live = self.current_name()
        for name in reversed(self.names()):
            if name not in (live, ROOT) and not self.is_ready(name):
                return name
        return None

    # -- inside a generation --------------------------------------------------------------
    def info(self, generation: Path | None = None) -> Path:
        return (generation or self.current()) / INFO

    def shard(self, i: int, generation: Path | None = None) -> Path:
        return (generation or self.current()) / shard_name(i)

    def shards(self, n: int, generation: Path | None = None) -> list[Path]:
        gen = generation or self.current()
        return [gen / shard_name(i) for i in range(n)]

    def root_shard_dirs(self) -> list[Path]:
        """The shard directories of the root generation (for gc)."""
        return sorted(self.root.glob("shard-[0-9][0-9][0-9]*"))

    def feed_ledger(self, stream: str, group: str) -> Path:
        """The change feed's ledger of applied versions (``ragfleet.feed.ledger``), one per
        stream and group, at the root: it outlives generations, as the documents do."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{stream}.{group}")
        return self.root / f"feed-{safe}.sqlite"

    # -- beside the collection ------------------------------------------------------------
    def build_dir(self, pid: int) -> Path:
        return self.root.with_name(f".{self.root.name}.building-{pid}")

    def build_dirs(self) -> list[Path]:
        return sorted(self.root.parent.glob(f".{self.root.name}.building-*"))


def shard_name(i: int) -> str:
    return f"shard-{i:03d}"
