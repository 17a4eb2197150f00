"""WriteBatch / ChunkRecord: validation, and the binary encoding round trip."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.errors import InputError
from ragfleet.index.writebatch import ChunkRecord, WriteBatch


def record(doc_id: str = "d", n: int = 0, d: int = 4, **kw: Any) -> ChunkRecord:
    fields: dict[str, Any] = {
        "chunk_id": f"{doc_id}#{n}",
        "doc_id": doc_id,
        "n": n,
        "text": f"text {doc_id} {n}",
        "title": "T",
        "metadata": {"lang": "en"},
        "content_hash": f"c-{doc_id}-{n}",
        "doc_hash": f"h-{doc_id}",
        "vector": np.arange(d, dtype=np.float32) + n,
    }
    fields.update(kw)
    return ChunkRecord(**fields)


# -- Hypothesis round trip ----------------------------------------------------------------

json_leaf: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_value = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=8,
)
ids = st.text(min_size=1, max_size=12)  # any unicode, incl. '#', emoji, combining marks


@st.composite
def batches(draw: st.DrawFn) -> WriteBatch:
    d = draw(st.integers(3, 64))
    doc_ids = draw(st.lists(ids, unique=True, max_size=4))
    upserts = []
    for doc_id in doc_ids:
        for n in range(draw(st.integers(1, 3))):
            vec = draw(
                st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=d, max_size=d)
            )
            upserts.append(
                record(
                    doc_id,
                    n,
                    text=draw(st.text(min_size=1, max_size=40)),
                    title=draw(st.text(max_size=10)),
                    metadata=draw(st.dictionaries(st.text(max_size=5), json_value, max_size=3)),
                    doc_hash=f"h{len(doc_id)}",
                    vector=np.asarray(vec, dtype=np.float32),
                )
            )
    deletes = draw(st.lists(ids.filter(lambda x: x not in doc_ids), unique=True, max_size=4))
    if not upserts and not deletes:
        deletes = ["only-a-delete"]
    return WriteBatch(draw(st.integers(1, 2**64 - 1)), tuple(upserts), tuple(deletes))


@settings(max_examples=100, deadline=None)
@given(batches())
def test_encode_decode_round_trip(batch: WriteBatch) -> None:
    decoded = WriteBatch.decode(batch.encode())
    assert decoded == batch
    assert decoded.encode() == batch.encode()
    assert decoded.vectors().dtype == np.float32
    assert decoded.d == batch.d


def test_vectors_are_raw_float32_little_endian_after_the_header() -> None:
    batch = WriteBatch(7, (record("a", 0, d=3), record("a", 1, d=3)))
    data = batch.encode()
    magic, version, head_len = struct.unpack_from("<4sBI", data)
    assert (magic, version) == (b"RFWB", 1)
    header = json.loads(data[9 : 9 + head_len])
    assert header["seq"] == 7 and header["d"] == 3 and header["deletes"] == []
    assert header["chunks"]["n"] == [0, 1]
    body = data[9 + head_len :]
    assert body == np.array([[0, 1, 2], [1, 2, 3]], dtype="<f4").tobytes()
    assert len(body) == 4 * 2 * 3


def test_delete_only_batch_round_trips_with_d_zero() -> None:
    batch = WriteBatch(1, (), ("x", "y"))
    decoded = WriteBatch.decode(batch.encode())
    assert decoded == batch and decoded.d == 0 and decoded.vectors().shape == (0, 0)


def test_replaced_doc_ids_are_deletes_then_upserted_docs() -> None:
    batch = WriteBatch(3, (record("b", 0), record("a", 0), record("b", 1)), ("z",))
    assert batch.upserted_doc_ids == ("b", "a")
    assert batch.replaced_doc_ids == ("z", "b", "a")


def test_record_is_immutable_and_copies_its_vector() -> None:
    v = np.ones(4, dtype=np.float64)
    r = record(vector=v)
    v[0] = 99.0
    assert r.vector.dtype == np.float32 and r.vector[0] == 1.0
    with pytest.raises(ValueError):
        r.vector[0] = 5.0
    with pytest.raises(TypeError):
        r.metadata["x"] = 1  # type: ignore[index]


def test_metadata_is_json_canonical() -> None:
    r = record(metadata={"tags": ("a", "b"), "nested": {"k": 1.5}})
    assert r.metadata == {"tags": ["a", "b"], "nested": {"k": 1.5}}


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"chunk_id": "d#7"}, "doc_id#n"),
        ({"n": -1, "chunk_id": "d#-1"}, "n must be"),
        ({"text": ""}, "must not be empty"),
        ({"text": "bad \ud800 surrogate"}, "not valid Unicode"),
        ({"doc_id": "\udfff", "chunk_id": "\udfff#0"}, "not valid Unicode"),
        ({"metadata": {"k": {1, 2}}}, "is not JSON"),
        ({"metadata": {1: "int key"}}, "not a str"),
        ({"metadata": {"x": float("nan")}}, "not finite"),
        ({"metadata": ["not", "an", "object"]}, "JSON object"),
        ({"vector": np.array([1.0, np.nan])}, "NaN or inf"),
        ({"vector": np.zeros((2, 2))}, "1-d"),
        ({"vector": np.zeros(0)}, "1-d"),
        ({"vector": ["a", "b"]}, "not numeric"),
        ({"content_hash": ""}, "must not be empty"),
    ],
)
def test_record_validation(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        record(**kw)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WriteBatch(0, (), ("a",)), "seq must be in"),
        (lambda: WriteBatch(2**64, (), ("a",)), "seq must be in"),
        (lambda: WriteBatch(True, (), ("a",)), "seq must be an int"),
        (lambda: WriteBatch(1), "empty write batch"),
        (lambda: WriteBatch(1, (), ("a", "a")), "duplicate doc_id"),
        (lambda: WriteBatch(1, (record("a"), record("a"))), "duplicate chunk_id"),
        (lambda: WriteBatch(1, (record("a", 0, d=3), record("b", 0, d=4))), "dimensions"),
        (lambda: WriteBatch(1, (record("a", 0), record("a", 2))), "incomplete"),
        (lambda: WriteBatch(1, (record("a", 1),)), "incomplete"),
        (
            lambda: WriteBatch(1, (record("a", 0), record("a", 1, doc_hash="other"))),
            "different doc_hash",
        ),
        (lambda: WriteBatch(1, (record("a"),), ("a",)), "both deleted and upserted"),
        (lambda: WriteBatch(1, ("not a record",), ()), "ChunkRecord"),  # type: ignore[arg-type]
        (lambda: WriteBatch(1, (), ("",)), "must not be empty"),
    ],
)
def test_batch_validation(make: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make()


def _with_header(header: dict[str, Any], body: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<4sBI", b"RFWB", 1, len(head)) + head + body


_GOOD = WriteBatch(5, (record("a", 0, d=2),)).encode()
_COLS: dict[str, list[Any]] = {
    c: [] for c in ("doc_id", "n", "text", "title", "metadata", "content_hash", "doc_hash")
}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RFW", "shorter than its prefix"),
        (b"XXXX" + _GOOD[4:], "not a write batch"),
        (_GOOD[:4] + b"\x09" + _GOOD[5:], "format v9"),
        (_GOOD[:30], "runs past the end"),
        (_GOOD[:-1], "vector bytes"),
        (_GOOD + b"\0\0\0\0", "vector bytes"),
        (struct.pack("<4sBI", b"RFWB", 1, 2) + b"\xff\xfe", "not UTF-8 JSON"),
        (_with_header([1, 2]), "not a JSON object"),  # type: ignore[arg-type]
        (_with_header({"seq": 1, "d": 0, "deletes": []}), "lacks a field"),
        (_with_header({"seq": 1, "d": -1, "deletes": ["a"], "chunks": _COLS}), "inconsistent"),
        (_with_header({"seq": 0, "d": 0, "deletes": ["a"], "chunks": _COLS}), "seq must be"),
        (_with_header({"seq": 1, "d": 0, "deletes": "abc", "chunks": _COLS}), "must be lists"),
        (
            _with_header({"seq": 1, "d": 0, "deletes": [], "chunks": {**_COLS, "n": "0"}}),
            "must be lists",
        ),
    ],
)
def test_decode_rejects_malformed_bytes(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        WriteBatch.decode(data)
