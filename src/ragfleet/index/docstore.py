"""The per-shard document store: row → chunk_id, doc_id, text, title, metadata, hashes.

A row's content never changes once written (liveness lives in the shard's
:class:`~ragfleet.index.rowtable.RowTable`), so the store is append-only and has two parts:

* ``main``: ``docs.sqlite``, the rows of the last checkpoint, ``0 .. n_committed - 1``.
  Written only by :meth:`DocStore.commit`, at a checkpoint, in one durable transaction
  (rollback journal, ``synchronous=FULL``) before the manifest that names ``n_committed``
  is committed. Rows at or past ``n_committed`` (left by a checkpoint that crashed before
  its manifest) are ignored by every read and deleted when a writer opens the store.
* ``overlay``: an in-memory SQLite database attached to the same connection, holding the
  rows replayed from the write-ahead log and written since the checkpoint.

Every read is the union of ``main`` (rows below ``n_committed``) and the overlay, so a
filter compiled by :mod:`ragfleet.search.filters` runs unchanged over both. A read-only
store (``read_only=True``) opens ``docs.sqlite`` with ``mode=ro`` (``immutable=1`` on a
read-only file system, where no writer can exist) and never writes a byte: it works
beside a writer and on read-only media. A writer killed inside :meth:`DocStore.commit`
leaves a hot rollback journal that only a writer may roll back; a reader that meets one
waits up to :data:`HOT_JOURNAL_WAIT_S` for the collection's next writer (it rolls the
journal back when it opens), then says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from ragfleet.errors import CollectionError, StorageError
from ragfleet.index.rowtable import RowEntry

_COLUMNS = "row, chunk_id, doc_id, n, title, text, metadata, content_hash, doc_hash"
_TABLE = """
CREATE TABLE IF NOT EXISTS {db}.chunks (
    row INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    doc_hash TEXT NOT NULL
)"""
_BUSY_TIMEOUT_S = 30.0
#: How long a reader waits for a writer to roll back a crashed commit's journal.
HOT_JOURNAL_WAIT_S = 10.0
_PAGE = 4096


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """One row of the docstore, whole: what a write stores (``row`` assigned by the
    shard, equal to its dense/sparse row), what a hit is read back from, and what
    compaction, reindex and reshard copy (with a vector, as a
    :class:`~ragfleet.index.writebatch.ChunkRecord`)."""

    row: int
    chunk_id: str
    doc_id: str
    n: int
    title: str
    text: str
    metadata: Mapping[str, Any]
    content_hash: str
    doc_hash: str


def _read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _connect_read_only(path: Path) -> sqlite3.Connection:
    if not path.exists():
        return sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    uri = f"file:{quote(str(path.resolve()))}"
    try:
        db = sqlite3.connect(
            f"{uri}?mode=ro", uri=True, check_same_thread=False, isolation_level=None,
            timeout=_BUSY_TIMEOUT_S,
        )  # fmt: skip
        _read(db, path, "SELECT 1 FROM sqlite_master LIMIT 1", ())
        return db
    except sqlite3.OperationalError:
        if not _read_only_fs(path.parent):
            raise
    # read-only media and a database left in WAL journal mode (ragfleet < 0.2): SQLite can
    # only read it as immutable, which is exact here since nothing can write to it
    return sqlite3.connect(
        f"{uri}?immutable=1", uri=True, check_same_thread=False, isolation_level=None
    )


def _read(
    db: sqlite3.Connection, path: Path, sql: str, params: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """``db.execute(sql, params).fetchall()`` on a read-only connection, waiting out a hot
    rollback journal (SQLite: "attempt to write a readonly database") for at most
    :data:`HOT_JOURNAL_WAIT_S`."""
    deadline = time.monotonic() + HOT_JOURNAL_WAIT_S
    while True:
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as e:
            if "readonly" not in str(e) or not _hot_journal(path):
                raise
            if time.monotonic() >= deadline:
                raise CollectionError(
                    f"{path}: a writer stopped inside a checkpoint and left its rollback "
                    "journal, which a reader may not roll back; open the collection for "
                    "writing once (Collection.open, ragfleet upsert/compact, ragfleet serve) "
                    "and readers work again"
                ) from e
            time.sleep(0.05)


def _hot_journal(path: Path) -> bool:
    return path.with_name(path.name + "-journal").exists()


class DocStore:
    """SQLite docstore of one shard (see the module docstring). Thread-safe: one
    connection behind a lock.

    Args:
        path: ``docs.sqlite``.
        n_committed: the rows of the last checkpoint (from its manifest); 0 for none.
        read_only: open without writing anything.
    """

    def __init__(self, path: Path, n_committed: int, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._n = n_committed
        self._lock = threading.Lock()
        try:
            if read_only:
                self._db = _connect_read_only(path)
            else:
                self._db = sqlite3.connect(
                    str(path), check_same_thread=False, isolation_level=None,
                    timeout=_BUSY_TIMEOUT_S,
                )  # fmt: skip
                self._prepare_writer()
            self._db.execute("ATTACH DATABASE ':memory:' AS overlay")
            self._db.execute(_TABLE.format(db="overlay"))
            if not self._has_main_table():
                if not read_only or path.exists():
                    raise CollectionError(f"{path} holds no chunks table; restore the shard")
                self._db.execute(_TABLE.format(db="main"))  # an in-memory stand-in
        except sqlite3.DatabaseError as e:
            raise CollectionError(f"cannot open docstore {path}: {e}") from e

    def _prepare_writer(self) -> None:
        db = self._db
        db.execute("PRAGMA synchronous=FULL")
        # stores of ragfleet < 0.2 are in WAL journal mode; readers need a rollback one. With a
        # reader still attached the switch fails: it stays in WAL mode until the next open.
        with contextlib.suppress(sqlite3.OperationalError):
            db.execute("PRAGMA journal_mode=DELETE")
        db.execute(_TABLE.format(db="main"))
        db.execute("DELETE FROM main.chunks WHERE row >= ?", (self._n,))  # a crashed commit

    def _has_main_table(self) -> bool:
        found = self._select(
            "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'chunks'", ()
        )
        return bool(found)

    @property
    def n_committed(self) -> int:
        """Rows held by ``main`` (the last checkpoint's)."""
        return self._n

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes -------------------------------------------------------------------------
    def add(self, rows: Sequence[StoredChunk]) -> None:
        """Add rows to the overlay (a write since the checkpoint, or its replay)."""
        if not rows:
            return
        with self._lock:
            self._db.executemany(
                f"INSERT OR REPLACE INTO overlay.chunks ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                [_values(c) for c in rows],
            )

    def commit(self, n_rows: int) -> None:
        """Move the overlay into ``docs.sqlite`` durably (one transaction, fsynced), as the
        first half of a checkpoint whose manifest will name ``n_rows``.

        The overlay is kept until :meth:`committed` — the manifest is the commit point.
        """
        if self.read_only:
            raise CollectionError(f"docstore {self.path} is read-only")
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM main.chunks WHERE row >= ?", (self._n,))
                db.execute(
                    f"INSERT INTO main.chunks ({_COLUMNS}) SELECT {_COLUMNS} FROM overlay.chunks"
                )
                (count,) = db.execute("SELECT COUNT(*) FROM main.chunks").fetchone()
                if count != n_rows:
                    raise CollectionError(
                        f"docstore {self.path}: {count} rows after commit, expected {n_rows}"
                    )
                db.execute("COMMIT")
            except BaseException as e:
                if db.in_transaction:  # SQLite rolls back by itself after SQLITE_FULL
                    db.execute("ROLLBACK")
                if isinstance(e, sqlite3.OperationalError):
                    raise StorageError(f"docstore {self.path}: {e}", applied=False) from e
                raise

    def committed(self, n_rows: int) -> None:
        """The manifest naming ``n_rows`` is durable: the overlay's rows now live in main."""
        with self._lock:
            self._db.execute("DELETE FROM overlay.chunks")
            self._n = n_rows

    # -- reads --------------------------------------------------------------------------
    def entries(self) -> list[RowEntry]:
        """(chunk_id, doc_id, doc_hash) of every checkpointed row, in row order; the rows
        must be exactly ``0 .. n_committed - 1``."""
        with self._lock:
            found = self._select(
                "SELECT row, chunk_id, doc_id, doc_hash FROM main.chunks WHERE row < ? "
                "ORDER BY row",
                (self._n,),
            )
        if len(found) != self._n or (found and found[-1][0] != self._n - 1):
            raise CollectionError(
                f"docstore {self.path} holds {len(found)} of the {self._n} rows its manifest "
                "names; the shard is damaged: restore it from a replica or rebuild"
            )
        return [RowEntry(c, d, h) for _, c, d, h in found]

    def _union(self, columns: str, where: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        sql = (
            f"SELECT {columns} FROM main.chunks WHERE row < ? AND ({where}) UNION ALL "
            f"SELECT {columns} FROM overlay.chunks WHERE ({where})"
        )
        with self._lock:
            return self._select(sql, [self._n, *params, *params])

    def _select(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self.read_only:
            return _read(self._db, self.path, sql, params)
        return self._db.execute(sql, params).fetchall()

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        """The stored chunks of ``rows`` (rows that do not exist are absent)."""
        out: dict[int, StoredChunk] = {}
        for part in _pages([int(r) for r in rows]):
            marks = ",".join("?" * len(part))
            for r in self._union(_COLUMNS, f"row IN ({marks})", part):
                out[r[0]] = StoredChunk(
                    r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8]
                )
        return out

    def chunks(self, rows: Sequence[int]) -> list[StoredChunk]:
        """Whole rows (for compaction, reindex and reshard), in the order of ``rows``."""
        found = self.fetch(rows)
        missing = [r for r in rows if r not in found]
        if missing:
            raise CollectionError(f"docstore {self.path} lacks rows {missing[:5]}; restore it")
        return [found[r] for r in rows]

    def filter_rows(self, where_sql: str, params: Sequence[Any]) -> npt.NDArray[np.int64]:
        """Rows whose metadata matches a compiled filter (``search/filters.py``), live or
        not: the shard intersects them with its live rows."""
        found = self._union("row", where_sql, list(params))
        return np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))

    def disk_bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


def _values(c: StoredChunk) -> tuple[object, ...]:
    meta = json.dumps(dict(c.metadata), ensure_ascii=False)
    return (c.row, c.chunk_id, c.doc_id, c.n, c.title, c.text, meta, c.content_hash, c.doc_hash)


def _pages(rows: list[int]) -> Iterator[list[int]]:
    """``rows`` in pieces small enough for SQLite's limit on bound parameters."""
    for i in range(0, len(rows), _PAGE):
        yield rows[i : i + _PAGE]
