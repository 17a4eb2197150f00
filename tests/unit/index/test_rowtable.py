"""The row table's transition ``(table, batch) → table'`` and its restore from a checkpoint."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.index.rowtable import RowEntry, RowTable


def _doc(doc: str, n: int, h: str = "h") -> list[RowEntry]:
    return [RowEntry(f"{doc}#{i}", doc, f"{h}-{doc}") for i in range(n)]


def test_an_upsert_replaces_every_old_row_of_its_document() -> None:
    t = RowTable()
    first = t.apply([*_doc("a", 2), *_doc("b", 1)])
    assert (first.first_row, first.added, first.removed.tolist()) == (0, 3, [])
    step = t.apply(_doc("a", 1, "v2"))
    assert step.removed.tolist() == [0, 1] and step.first_row == 3
    assert t.live.tolist() == [False, False, True, True]
    assert t.doc_rows == {"b": [2], "a": [3]}
    assert t.doc_hash == {"b": "h-b", "a": "v2-a"}
    assert (t.n_rows, t.n_live, t.n_docs) == (4, 2, 2)


def test_a_delete_tombstones_and_forgets_the_document() -> None:
    t = RowTable()
    t.apply(_doc("a", 3))
    step = t.apply([], deletes=["a", "missing"])
    assert step.removed.tolist() == [0, 1, 2] and step.added == 0
    assert t.n_live == 0 and t.doc_rows == {} and t.doc_hashes() == {}
    assert t.deleted_rows().tolist() == [0, 1, 2]


def test_restore_rebuilds_documents_from_rows_and_live_mask() -> None:
    entries = [*_doc("a", 2), *_doc("b", 2)]
    t = RowTable.restore(entries, np.array([False, False, True, True]))
    assert t.doc_rows == {"b": [2, 3]} and t.n_live == 2
    assert t.chunk_ids([3, 0]) == ["b#1", "a#0"]


ops = st.lists(
    st.tuples(st.sampled_from("abcde"), st.integers(0, 3)),  # (doc, chunks; 0 = delete)
    max_size=40,
)


@given(ops)
def test_replaying_from_any_checkpoint_gives_the_same_state(seq: list[tuple[str, int]]) -> None:
    """Applying a sequence in one go equals restoring the table at any prefix (as a
    checkpoint would) and applying the rest: the transition depends only on the state."""
    batches = [(_doc(doc, n, f"v{i}"), [] if n else [doc]) for i, (doc, n) in enumerate(seq)]
    rows = [e for upserts, _ in batches for e in upserts]  # row r is rows[r]
    whole = RowTable()
    for upserts, deletes in batches:
        whole.apply(upserts, deletes)
    for cut in range(len(batches) + 1):
        t = RowTable()
        for upserts, deletes in batches[:cut]:
            t.apply(upserts, deletes)
        restored = RowTable.restore(rows[: t.n_rows], t.live)
        for upserts, deletes in batches[cut:]:
            restored.apply(upserts, deletes)
        assert restored.live.tolist() == whole.live.tolist()
        assert restored.doc_rows == whole.doc_rows
        assert restored.doc_hash == whole.doc_hash
