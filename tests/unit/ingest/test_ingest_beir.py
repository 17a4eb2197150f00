"""BEIR loaders on a tiny synthetic dataset (CRLF qrels included) and on SciFact if present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragfleet.errors import InputError
from ragfleet.ingest import (
    load_beir_corpus,
    load_beir_queries,
    load_beir_query_records,
    load_documents,
    load_qrels,
)

SCIFACT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "scifact"


def _beir(root: Path, qrels: bytes) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "One", "text": "First.", "metadata": {}},
        {"_id": "d2", "text": "Second."},
    ]
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in corpus), encoding="utf-8"
    )
    queries = [
        {"_id": "q1", "text": "first?", "metadata": {"k": 1}},
        {"_id": "q2", "text": "second?"},
    ]
    (root / "queries.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in queries), encoding="utf-8"
    )
    (root / "qrels" / "test.tsv").write_bytes(qrels)
    return root


_CRLF_QRELS = b"query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq1\td2\t0\r\nq2\td2\t2\r\n\r\n"


def test_synthetic_beir_with_crlf_qrels(tmp_path: Path) -> None:
    root = _beir(tmp_path, _CRLF_QRELS)
    assert [(d.doc_id, d.title, d.text) for d in load_beir_corpus(root)] == [
        ("d1", "One", "First."),
        ("d2", "", "Second."),
    ]
    assert load_beir_queries(root) == {"q1": "first?", "q2": "second?"}
    assert load_beir_query_records(root) == {
        "q1": {"text": "first?", "metadata": {"k": 1}},
        "q2": {"text": "second?", "metadata": {}},
    }
    assert load_qrels(root) == {"q1": {"d1": 1, "d2": 0}, "q2": {"d2": 2}}
    assert load_qrels(tmp_path) == load_qrels(
        _beir(tmp_path / "lf", _CRLF_QRELS.replace(b"\r", b""))
    )


def test_missing_split_lists_available_splits(tmp_path: Path) -> None:
    root = _beir(tmp_path, _CRLF_QRELS)
    (root / "qrels" / "train.tsv").write_bytes(_CRLF_QRELS)
    with pytest.raises(InputError, match=r"split 'dev'.*available splits: \['test', 'train'\]"):
        load_qrels(root, split="dev")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"query-id\tcorpus-id\tscore\nq1\td1\n",
            r"test\.tsv:2: expected 3 tab-separated fields, got 2",
        ),
        (
            b"query-id\tcorpus-id\tscore\nq1\td1\thigh\n",
            r"test\.tsv:2: score 'high' is not an integer",
        ),
        (b"q\tc\ts\nq1\td1\t1\nq1\td1\t2\n", r"test\.tsv:3: \(q1, d1\) judged twice"),
    ],
)
def test_bad_qrels_rows(tmp_path: Path, body: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_qrels(_beir(tmp_path, body))


def test_missing_beir_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_beir_corpus(tmp_path / "nope")
    with pytest.raises(InputError, match=r"queries\.jsonl does not exist"):
        load_beir_queries(tmp_path)
    root = _beir(tmp_path / "b", _CRLF_QRELS)
    (root / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n', encoding="utf-8"
    )
    with pytest.raises(InputError, match=r"queries\.jsonl:2: duplicate query id 'q1'"):
        load_beir_queries(root)


@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact not found at {SCIFACT}")
def test_scifact_counts() -> None:
    docs = list(load_documents(SCIFACT))
    assert len(docs) == 5183 and len({d.doc_id for d in docs}) == 5183
    assert all(d.text.strip() for d in docs)
    qrels = load_qrels(SCIFACT, "test")
    assert len(qrels) == 300
    assert sum(len(r) for r in qrels.values()) == 339
    queries = load_beir_queries(SCIFACT)
    assert set(qrels) <= set(queries)
    assert {d for r in qrels.values() for d in r} <= {d.doc_id for d in docs}
