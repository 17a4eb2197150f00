"""Collection writes: checkpoint policy, read-your-writes, concurrent readers, bad input,
``ingest --sync`` and the write CLI (real int8 encoder)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import demo_docs
from typer.testing import CliRunner

from ragfleet.cli.app import app
from ragfleet.collection import Collection
from ragfleet.errors import ConfigError, InputError
from ragfleet.index.manifest import ShardManifest
from ragfleet.index.shard import CheckpointPolicy
from ragfleet.ingest import load_documents
from ragfleet.search.request import SearchRequest
from ragfleet.types import Document


def _checkpoint_seqs(col: Collection) -> list[int]:
    return [
        ShardManifest.load(s.path).checkpoint_seq if (s.path / "manifest.json").exists() else 0
        for s in col.shards
    ]


def test_a_write_is_visible_on_return_and_checkpointed_only_on_close(
    fresh_collection: Collection,
) -> None:
    col = fresh_collection
    col.upsert(demo_docs(10))
    col.upsert([Document("new-doc", "Zanzibarian marmalade is orange.")])
    assert col.search("Zanzibarian marmalade", k=1, mode="sparse").hits[0].doc_id == "new-doc"
    assert _checkpoint_seqs(col) == [0, 0]  # the default policy: no checkpoint yet
    path, encoder = col.path, col.encoder
    seqs = [s.seq for s in col.shards]
    col.close()
    assert _checkpoint_seqs(col) == seqs
    with Collection.open(path, encoder=encoder) as again:
        assert again.search("Zanzibarian marmalade", k=1).hits[0].doc_id == "new-doc"


def test_policy_checkpoints_after_n_batches(tmp_path: Path, encoder: Any) -> None:
    col = Collection.create(tmp_path / "c", encoder=encoder, policy=CheckpointPolicy(max_batches=2))
    with col:
        col.upsert(demo_docs(2)[:1])
        assert _checkpoint_seqs(col) == [0]
        col.upsert(demo_docs(2)[1:])
        assert _checkpoint_seqs(col) == [2]
    with pytest.raises(ConfigError, match="max_batches"):
        CheckpointPolicy(max_batches=0)


def test_a_row_deleted_between_search_and_fetch_is_dropped(fresh_collection: Collection) -> None:
    col = fresh_collection
    col.upsert(demo_docs(8))
    hit = col.search("Super Bowl", k=1).hits[0]
    shard = col.shards[hit.shard]
    row = next(c.row for c in shard.chunks_of([hit.doc_id]) if c.chunk_id == hit.chunk_id)
    assert row in shard.fetch([row])
    col.delete([hit.doc_id])
    assert shard.fetch([row]) == {}  # a query whose search preceded the delete drops it


def test_concurrent_readers_see_only_live_chunks(fresh_collection: Collection) -> None:
    col = fresh_collection
    base = demo_docs(16)
    col.upsert(base)
    written = {(d.doc_id, d.text) for d in base}
    versions = [
        [Document(d.doc_id, f"{d.text} revision {v}", d.title, d.metadata) for d in base[:6]]
        for v in range(3)
    ]
    for batch in versions:
        written |= {(d.doc_id, d.text) for d in batch}
    texts = {d: t for d, t in written}
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        req = SearchRequest(k=10, mode="hybrid")
        while not stop.is_set():
            after_delete = deleted.is_set()  # the delete had returned before this query began
            for res in col.search_batch(["Super Bowl revision", "Warsaw river"], req):
                for h in res.hits:
                    if not h.text or h.doc_id not in texts:
                        errors.append(f"bad hit {h.chunk_id!r}: {h.text!r}")
                    if h.doc_id in {d.doc_id for d in base[10:14]} and after_delete:
                        errors.append(f"deleted document {h.doc_id} returned")
            time.sleep(0.002)

    deleted = threading.Event()
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for batch in versions:
            col.upsert(batch)
        col.delete([d.doc_id for d in base[10:14]])
        deleted.set()
        col.upsert(versions[0])
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors, errors[:5]


def test_a_bad_batch_writes_nothing(fresh_collection: Collection) -> None:
    col = fresh_collection
    col.upsert(demo_docs(3))
    before = col.stats()["chunks"]
    bad = [
        Document("a", "fine"),
        Document("a", "dup"),
        Document("b", "  "),
        Document("c", "\ud800"),
    ]
    with pytest.raises(InputError, match=r"duplicate doc_id.*not valid UTF-8"):
        col.upsert(bad)
    assert col.stats()["chunks"] == before


def test_invalid_utf8_in_a_jsonl_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "bad \xff\xfe"}\n')
    with pytest.raises(InputError, match="UTF-8"):
        list(load_documents(path))


def _jsonl(path: Path, docs: list[Document]) -> Path:
    import json

    lines = [json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text}) for d in docs]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_cli_ingest_sync_upsert_delete(tmp_path: Path, encoder: Any) -> None:
    docs = demo_docs(8)
    col_dir = tmp_path / "col"
    runner = CliRunner()
    first = _jsonl(tmp_path / "a.jsonl", docs)
    assert runner.invoke(app, ["ingest", str(first), "-c", str(col_dir), "-q"]).exit_code == 0
    fewer = _jsonl(tmp_path / "b.jsonl", docs[:6])
    out = runner.invoke(app, ["ingest", str(fewer), "-c", str(col_dir), "-q", "--sync"])
    assert out.exit_code == 0, out.output
    assert "6 unchanged, 2 deleted" in out.output
    extra = _jsonl(tmp_path / "c.jsonl", [Document("x1", "An extra document about owls.")])
    assert runner.invoke(app, ["upsert", str(col_dir), str(extra), "-q"]).exit_code == 0
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{docs[0].doc_id}\n", "utf-8")
    out = runner.invoke(app, ["delete", str(col_dir), "--ids", "x1", "--ids-file", str(ids)])
    assert out.exit_code == 0 and "deleted 2 of 2" in out.output, out.output
    assert runner.invoke(app, ["delete", str(col_dir)]).exit_code == 2
    with Collection.open(col_dir, encoder=encoder) as col:
        assert col.doc_ids() == sorted(d.doc_id for d in docs[1:6])
