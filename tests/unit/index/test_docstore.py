"""The docstore: checkpointed rows in docs.sqlite, newer rows in an in-memory overlay,
every read over both, and a read-only mode that writes nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ragfleet.errors import CollectionError
from ragfleet.index.docstore import DocStore, StoredChunk
from ragfleet.index.rowtable import RowEntry


def _chunk(row: int, doc: str, n: int, meta: dict[str, object] | None = None) -> StoredChunk:
    return StoredChunk(
        row, f"{doc}#{n}", doc, n, "T", f"text {row}", meta or {}, f"c{row}", f"h-{doc}"
    )


def _files(d: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in d.iterdir()}


def test_overlay_rows_are_read_with_committed_ones(tmp_path: Path) -> None:
    db = DocStore(tmp_path / "docs.sqlite", 0)
    db.add([_chunk(0, "a", 0), _chunk(1, "a", 1)])
    db.commit(2)
    db.committed(2)
    db.add([_chunk(2, "b", 0, {"year": 2020})])
    assert sorted(db.fetch([0, 2, 99])) == [0, 2]
    assert db.fetch([2])[2].metadata == {"year": 2020}
    assert db.filter_rows("json_extract(metadata, '$.year') >= ?", [2015]).tolist() == [2]
    assert [c.row for c in db.chunks([2, 0])] == [2, 0]
    assert db.entries() == [RowEntry("a#0", "a", "h-a"), RowEntry("a#1", "a", "h-a")]


def test_only_committed_rows_survive_a_reopen(tmp_path: Path) -> None:
    db = DocStore(tmp_path / "docs.sqlite", 0)
    db.add([_chunk(0, "a", 0)])
    db.commit(1)
    db.committed(1)
    db.add([_chunk(1, "b", 0)])  # in the overlay only: the log replays it after a crash
    db.close()
    again = DocStore(tmp_path / "docs.sqlite", 1)
    assert sorted(again.fetch([0, 1])) == [0]


def test_rows_past_the_manifest_are_ignored_and_dropped_by_a_writer(tmp_path: Path) -> None:
    """A checkpoint that committed the docstore but crashed before its manifest left rows
    that no manifest names: readers ignore them, the next writer deletes them."""
    db = DocStore(tmp_path / "docs.sqlite", 0)
    db.add([_chunk(0, "a", 0), _chunk(1, "b", 0)])
    db.commit(2)  # ... and the manifest naming 2 rows never got written
    db.close()
    reader = DocStore(tmp_path / "docs.sqlite", 0, read_only=True)
    assert reader.fetch([0, 1]) == {} and reader.entries() == []
    reader.close()
    writer = DocStore(tmp_path / "docs.sqlite", 0)
    writer.close()
    raw = sqlite3.connect(tmp_path / "docs.sqlite")
    assert raw.execute("SELECT COUNT(*) FROM chunks").fetchone() == (0,)


def test_commit_refuses_a_wrong_row_count_and_changes_nothing(tmp_path: Path) -> None:
    db = DocStore(tmp_path / "docs.sqlite", 0)
    db.add([_chunk(0, "a", 0)])
    with pytest.raises(CollectionError, match="expected 2"):
        db.commit(2)
    db.close()
    raw = sqlite3.connect(tmp_path / "docs.sqlite")
    assert raw.execute("SELECT COUNT(*) FROM chunks").fetchone() == (0,)


def test_entries_detect_missing_rows(tmp_path: Path) -> None:
    db = DocStore(tmp_path / "docs.sqlite", 0)
    db.add([_chunk(0, "a", 0)])
    db.commit(1)
    db.close()
    with pytest.raises(CollectionError, match="holds 1 of the 3 rows"):
        DocStore(tmp_path / "docs.sqlite", 3, read_only=True).entries()


def test_a_reader_writes_nothing(tmp_path: Path) -> None:
    db = DocStore(tmp_path / "docs.sqlite", 0)
    db.add([_chunk(0, "a", 0)])
    db.commit(1)
    db.committed(1)
    db.close()
    before = _files(tmp_path)
    reader = DocStore(tmp_path / "docs.sqlite", 1, read_only=True)
    reader.add([_chunk(1, "b", 0)])  # replayed rows go to the in-memory overlay
    assert sorted(reader.fetch([0, 1])) == [0, 1]
    with pytest.raises(CollectionError, match="read-only"):
        reader.commit(2)
    reader.close()
    assert _files(tmp_path) == before


def test_a_reader_of_a_missing_store_sees_no_rows(tmp_path: Path) -> None:
    reader = DocStore(tmp_path / "docs.sqlite", 0, read_only=True)
    assert reader.entries() == [] and reader.fetch([0]) == {}
    reader.close()
    assert not (tmp_path / "docs.sqlite").exists()


def test_a_reader_beside_a_writer_sees_committed_rows(tmp_path: Path) -> None:
    writer = DocStore(tmp_path / "docs.sqlite", 0)
    writer.add([_chunk(0, "a", 0)])
    writer.commit(1)
    writer.committed(1)
    reader = DocStore(tmp_path / "docs.sqlite", 1, read_only=True)
    writer.add([_chunk(1, "b", 0)])
    writer.commit(2)  # the reader holds no lock that blocks this
    writer.committed(2)
    assert sorted(reader.fetch([0, 1])) == [0]  # its manifest named 1 row
    reader.close()
    writer.close()
