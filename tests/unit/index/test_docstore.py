import sqlite3
from pathlib import Path

import pytest

from ragfleet.index.docstore import DocStore, NewChunk


def _chunk(row: int, doc: str, n: int, meta: dict[str, object] | None = None) -> NewChunk:
    return NewChunk(
        row, f"{doc}#{n}", doc, n, "T", f"text {row}", meta or {}, f"c{row}", f"h-{doc}"
    )


def test_apply_replaces_a_document_in_one_transaction(tmp_path: Path) -> None:
    db = DocStore(tmp_path / "docs.sqlite")
    assert db.apply(1, [], [_chunk(0, "a", 0), _chunk(1, "a", 1), _chunk(2, "b", 0)]) == []
    removed = db.apply(2, ["a"], [_chunk(3, "a", 0)])
    assert sorted(removed) == [0, 1]
    assert db.applied_seq == 2
    assert db.counts() == (4, 2, 2)
    assert sorted(db.deleted_rows().tolist()) == [0, 1]
    assert db.live_rows_of(["a"]) == [3]
    assert db.fetch([3, 99])[3].text == "text 3" and 99 not in db.fetch([99])
    assert db.doc_hashes() == {"a": "h-a", "b": "h-b"}


def test_failed_batch_leaves_store_unchanged(tmp_path: Path) -> None:
    db = DocStore(tmp_path / "docs.sqlite")
    db.apply(1, [], [_chunk(0, "a", 0)])
    with pytest.raises(sqlite3.IntegrityError):
        db.apply(2, ["a"], [_chunk(1, "b", 0), _chunk(1, "c", 0)])  # duplicate row
    assert db.counts() == (1, 1, 1) and db.applied_seq == 1


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    db = DocStore(tmp_path / "docs.sqlite")
    db.apply(7, [], [_chunk(0, "a", 0, {"year": 2020})])
    db.close()
    db = DocStore(tmp_path / "docs.sqlite")
    assert db.applied_seq == 7 and db.fetch([0])[0].metadata == {"year": 2020}
    assert db.filter_rows("json_extract(metadata, '$.year') >= ?", [2015]).tolist() == [0]
