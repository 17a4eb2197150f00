"""BEIR datasets (Thakur et al. 2021, "BEIR: A Heterogeneous Benchmark for Zero-shot
Evaluation of Information Retrieval Models"): ``corpus.jsonl``, ``queries.jsonl`` and
``qrels/<split>.tsv`` (``query-id  corpus-id  score`` with a header line).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragfleet.errors import InputError
from ragfleet.ingest.jsonl import OnInvalid, iter_json_lines, load_jsonl, record_to_document
from ragfleet.types import Document


def _beir_file(root: str | Path, name: str) -> Path:
    path = Path(root) / name
    if not Path(root).is_dir():
        raise InputError(f"BEIR folder {root} does not exist")
    if not path.is_file():
        raise InputError(
            f"{path} does not exist; a BEIR folder holds corpus.jsonl, queries.jsonl, qrels/"
        )
    return path


def load_beir_corpus(root: str | Path, on_invalid: OnInvalid | None = None) -> Iterator[Document]:
    """The documents of ``root/corpus.jsonl`` (``_id``, ``title``, ``text``, ``metadata``);
    ``on_invalid`` as for :func:`~ragfleet.ingest.jsonl.load_jsonl`."""
    return load_jsonl(_beir_file(root, "corpus.jsonl"), on_invalid)


def load_beir_query_records(root: str | Path) -> dict[str, dict[str, Any]]:
    """``{query_id: {"text": …, "metadata": {…}}}`` from ``root/queries.jsonl``.

    Raises:
        InputError: the file is missing or a line is malformed or repeats an id.
    """
    out: dict[str, dict[str, Any]] = {}
    path = _beir_file(root, "queries.jsonl")
    for lineno, record in iter_json_lines(path):
        where = f"{path}:{lineno}"
        q = record_to_document(record, where)
        if q.doc_id in out:
            raise InputError(f"{where}: duplicate query id {q.doc_id!r}")
        out[q.doc_id] = {"text": q.text, "metadata": dict(q.metadata)}
    return out


def load_beir_queries(root: str | Path) -> dict[str, str]:
    """``{query_id: text}`` from ``root/queries.jsonl``."""
    return {qid: r["text"] for qid, r in load_beir_query_records(root).items()}


def load_qrels(root: str | Path, split: str = "test") -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: relevance}}`` from ``root/qrels/<split>.tsv``.

    Tab separated, a header line (skipped: any first line whose score is not an integer),
    ``\\n`` or ``\\r\\n`` line endings, blank lines skipped.

    Raises:
        InputError: the split is missing (the message lists the splits there are), a row
            does not have three fields or an integer score, or a pair repeats with another
            score; the message names ``file:line``.
    """
    qrels_dir = Path(root) / "qrels"
    path = qrels_dir / f"{split}.tsv"
    if not path.is_file():
        splits = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
        raise InputError(f"no qrels for split {split!r} at {path}; available splits: {splits}")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.rstrip("\r\n").split("\t")
            if fields == [""]:
                continue
            if len(fields) != 3:
                raise InputError(
                    f"{path}:{lineno}: expected 3 tab-separated fields, got {len(fields)}"
                )
            qid, did, raw = fields
            try:
                score = int(raw)
            except ValueError as e:
                if lineno == 1:
                    continue  # the header
                raise InputError(f"{path}:{lineno}: score {raw!r} is not an integer") from e
            if qrels.setdefault(qid, {}).setdefault(did, score) != score:
                raise InputError(f"{path}:{lineno}: ({qid}, {did}) judged twice with other scores")
    return qrels
