"""The per-shard document store: rows → chunk_id, doc_id, text, metadata, hashes, tombstone.

SQLite in WAL journal mode (``docs.sqlite``). Every write batch is one SQLite
transaction that also records the write-ahead-log sequence number it applied
(``applied_seq``), so that replaying the shard's log after a crash skips batches the
docstore already holds and the store is never half-updated.

``synchronous=NORMAL``: a commit is not fsynced (the shard's own log already is, once per
batch); a power loss may roll back the last commits, together with their
``applied_seq``, and replay re-applies them. Before the shard truncates its log at a
checkpoint, :meth:`DocStore.sync` makes every commit durable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    doc_hash TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id) WHERE deleted = 0;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """One row of the docstore as read back for a hit."""

    row: int
    chunk_id: str
    doc_id: str
    n: int
    title: str
    text: str
    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NewChunk:
    """A row to insert (``row`` assigned by the shard, equal to its dense/sparse row)."""

    row: int
    chunk_id: str
    doc_id: str
    n: int
    title: str
    text: str
    metadata: Mapping[str, Any]
    content_hash: str
    doc_hash: str


class DocStore:
    """SQLite docstore of one shard. Thread-safe: one connection behind a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes -------------------------------------------------------------------------
    def apply(self, seq: int, delete_docs: Iterable[str], rows: Sequence[NewChunk]) -> list[int]:
        """Tombstone every live chunk of ``delete_docs``, insert ``rows``, record ``seq``.

        One transaction: after a crash the store holds the batch wholly or not at all.
        Returns the rows that were tombstoned.
        """
        deleted: list[int] = []
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for doc_id in delete_docs:
                    found = cur.execute(
                        "SELECT row FROM chunks WHERE doc_id = ? AND deleted = 0", (doc_id,)
                    ).fetchall()
                    deleted.extend(r[0] for r in found)
                if deleted:
                    cur.executemany(
                        "UPDATE chunks SET deleted = 1 WHERE row = ?", [(r,) for r in deleted]
                    )
                cur.executemany(
                    "INSERT INTO chunks (row, chunk_id, doc_id, n, title, text, metadata,"
                    " content_hash, doc_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            c.row,
                            c.chunk_id,
                            c.doc_id,
                            c.n,
                            c.title,
                            c.text,
                            json.dumps(dict(c.metadata), ensure_ascii=False),
                            c.content_hash,
                            c.doc_hash,
                        )
                        for c in rows
                    ],
                )
                cur.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('applied_seq', ?)",
                    (str(seq),),
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return deleted

    # -- reads --------------------------------------------------------------------------
    @property
    def applied_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'applied_seq'").fetchone()
        return int(row[0]) if row else 0

    def n_rows(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COALESCE(MAX(row) + 1, 0) FROM chunks").fetchone()
        return int(n)

    def chunk_ids(self) -> list[str]:
        """The chunk id of every row, tombstoned ones included, in row order."""
        with self._lock:
            found = self._db.execute("SELECT chunk_id FROM chunks ORDER BY row").fetchall()
        return [r[0] for r in found]

    def deleted_rows(self) -> npt.NDArray[np.int64]:
        with self._lock:
            found = self._db.execute("SELECT row FROM chunks WHERE deleted = 1").fetchall()
        return np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))

    def live_rows_of(self, doc_ids: Iterable[str]) -> list[int]:
        with self._lock:
            out: list[int] = []
            for doc_id in doc_ids:
                out.extend(
                    r[0]
                    for r in self._db.execute(
                        "SELECT row FROM chunks WHERE doc_id = ? AND deleted = 0", (doc_id,)
                    )
                )
        return out

    def doc_hashes(self) -> dict[str, str]:
        """doc_id → doc_hash of every live document (for incremental ingest)."""
        with self._lock:
            found = self._db.execute(
                "SELECT doc_id, doc_hash FROM chunks WHERE deleted = 0 GROUP BY doc_id"
            ).fetchall()
        return {d: h for d, h in found}

    def fetch(self, rows: Sequence[int], *, live_only: bool = False) -> dict[int, StoredChunk]:
        """The stored chunks of ``rows`` (missing rows, and with ``live_only`` tombstoned
        ones, are absent from the result)."""
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        live = " AND deleted = 0" if live_only else ""
        with self._lock:
            found = self._db.execute(
                "SELECT row, chunk_id, doc_id, n, title, text, metadata FROM chunks"
                f" WHERE row IN ({marks}){live}",
                [int(r) for r in rows],
            ).fetchall()
        return {
            r[0]: StoredChunk(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in found
        }

    def live_chunks(self, after_row: int = -1, limit: int = 1024) -> list[NewChunk]:
        """Up to ``limit`` live rows with ``row > after_row``, in row order (for compaction
        and reindexing: page through the store by passing the last row seen)."""
        with self._lock:
            found = self._db.execute(
                "SELECT row, chunk_id, doc_id, n, title, text, metadata, content_hash, doc_hash"
                " FROM chunks WHERE deleted = 0 AND row > ? ORDER BY row LIMIT ?",
                (after_row, limit),
            ).fetchall()
        return [
            NewChunk(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8])
            for r in found
        ]

    def chunks_of(self, doc_ids: Sequence[str]) -> list[NewChunk]:
        """Every live chunk of ``doc_ids``, grouped by document in chunk order."""
        if not doc_ids:
            return []
        marks = ",".join("?" * len(doc_ids))
        with self._lock:
            found = self._db.execute(
                "SELECT row, chunk_id, doc_id, n, title, text, metadata, content_hash, doc_hash"
                f" FROM chunks WHERE deleted = 0 AND doc_id IN ({marks}) ORDER BY doc_id, n",
                list(doc_ids),
            ).fetchall()
        return [
            NewChunk(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8])
            for r in found
        ]

    def sync(self) -> None:
        """Make every committed transaction durable (a full WAL checkpoint: SQLite fsyncs
        its log, copies it into the database file and fsyncs that)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(FULL)")

    def vacuum(self) -> None:
        """Reclaim the pages of deleted rows (SQLite ``VACUUM``, then a WAL checkpoint)."""
        with self._lock:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def counts(self) -> tuple[int, int, int]:
        """(rows, live rows, live documents)."""
        with self._lock:
            n, live = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(1 - deleted), 0) FROM chunks"
            ).fetchone()
            (docs,) = self._db.execute(
                "SELECT COUNT(DISTINCT doc_id) FROM chunks WHERE deleted = 0"
            ).fetchone()
        return int(n), int(live), int(docs)

    def filter_rows(self, where_sql: str, params: Sequence[Any]) -> npt.NDArray[np.int64]:
        """Live rows whose metadata matches a compiled filter (see ``search/filters.py``)."""
        with self._lock:
            found = self._db.execute(
                f"SELECT row FROM chunks WHERE deleted = 0 AND ({where_sql})", list(params)
            ).fetchall()
        return np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))
