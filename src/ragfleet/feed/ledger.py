"""The applied version of every document a feed wrote, kept beside the collection.

A feed is at-least-once: a worker that dies between writing and ``XACK`` has its entries
delivered again, possibly after newer entries for the same document were applied. The
ledger keeps, per document, the key ``(version, stream ms, stream seq)`` of the last entry
applied; an entry whose key is not newer is acknowledged without being applied.

Order of a batch: write to the collection (durable: the shard WAL is fsynced) → record the
keys here (one SQLite transaction, ``synchronous=FULL``) → ``XACK``. A crash between any
two steps redelivers entries whose effect is already in place; applying them again is a
no-op (unchanged content hash, or a delete of a missing document), then they are recorded.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from ragfleet.feed.entry import Key

_SCHEMA = """CREATE TABLE IF NOT EXISTS applied (
    doc_id TEXT PRIMARY KEY, version INTEGER NOT NULL, ms INTEGER NOT NULL,
    seq INTEGER NOT NULL, deleted INTEGER NOT NULL)"""
_CHUNK = 500  # SQLite's host-parameter limit is 999 on old builds


class Ledger:
    """A SQLite table ``doc_id → key``; safe to share between threads of one process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute(_SCHEMA)
        self._mutex = threading.Lock()

    def keys(self, doc_ids: Iterable[str]) -> dict[str, Key]:
        """The recorded key of each of ``doc_ids`` that has one."""
        ids = list(dict.fromkeys(doc_ids))
        out: dict[str, Key] = {}
        with self._mutex:
            for i in range(0, len(ids), _CHUNK):
                part = ids[i : i + _CHUNK]
                rows = self._db.execute(
                    f"SELECT doc_id, version, ms, seq FROM applied WHERE doc_id IN "
                    f"({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                out.update({r[0]: (r[1], r[2], r[3]) for r in rows})
        return out

    def record(self, applied: Mapping[str, tuple[Key, bool]]) -> None:
        """Record ``doc_id → (key, deleted)`` in one durable transaction; a key never moves
        back (an older one given here is ignored)."""
        rows = [(d, k[0], k[1], k[2], int(deleted)) for d, (k, deleted) in applied.items()]
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO applied VALUES (?, ?, ?, ?, ?) ON CONFLICT(doc_id) DO UPDATE "
                    "SET version=excluded.version, ms=excluded.ms, seq=excluded.seq, "
                    "deleted=excluded.deleted WHERE (excluded.version, excluded.ms, "
                    "excluded.seq) > (applied.version, applied.ms, applied.seq)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._mutex:
            return int(self._db.execute("SELECT COUNT(*) FROM applied").fetchone()[0])

    def close(self) -> None:
        with self._mutex:
            self._db.close()
