"""A second process on one collection (issue 14): a second writer is refused with the
holder's pid; readers work beside a writer that keeps checkpointing, and change nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from tests.reliability.procs import ENV, REPO, python, ragfleet, serving, write_jsonl

from ragfleet.collection import Collection
from ragfleet.config import ChunkerConfig, CollectionConfig, ShardingConfig
from ragfleet.types import Document

#: A writer that upserts and deletes for ``seconds``, checkpointing after every batch, and
#: prints each acknowledged generation of documents as a JSON line.
WRITER = """
import json, sys, time
from ragfleet.collection import Collection
from ragfleet.index.shard import CheckpointPolicy
from ragfleet.types import Document
path, seconds = sys.argv[1], float(sys.argv[2])
col = Collection.open(path, policy=CheckpointPolicy(max_batches=1))
print("locked", flush=True)
live, n, end = {}, 0, time.monotonic() + seconds
while time.monotonic() < end:
    n += 1
    doc = f"w{n % 7}"
    if n % 3 == 0 and live:
        gone = sorted(live)[0]
        col.delete([gone])
        live.pop(gone)
    else:
        col.upsert([Document(doc, f"version {n} of document {doc} zq{n}")])
        live[doc] = n
    print(json.dumps(sorted(live)), flush=True)
col.close()
"""

#: A reader that opens the collection read-only again and again for ``seconds`` and prints
#: the documents it sees (search and stats must never fail).
READER = """
import json, sys, time
from ragfleet.collection import Collection
from ragfleet.embed.registry import load_encoder
path, seconds = sys.argv[1], float(sys.argv[2])
enc = load_encoder("minilm-int8")
end, opens = time.monotonic() + seconds, 0
while time.monotonic() < end:
    with Collection.open(path, encoder=enc, read_only=True) as col:
        ids = col.doc_ids()
        stats = col.stats()
        hits = col.search("version of document", k=5, mode="hybrid").hits
        assert stats["documents"] == len(ids), (stats["documents"], ids)
        assert all(h.doc_id in ids for h in hits), (hits, ids)
        print(json.dumps(ids), flush=True)
        opens += 1
print("opens", opens, flush=True)
"""


def _collection(tmp: Path, encoder: Any) -> Path:
    root = tmp / "c"
    config = CollectionConfig(
        sharding=ShardingConfig(n_shards=2), chunker=ChunkerConfig.parse("window:16:4")
    )
    with Collection.create(root, config, encoder=encoder) as col:
        col.upsert([Document("seed", "a first document so that search has something")])
    return root


def _spawn(code: str, *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=REPO,
    )


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path: Path, encoder: Any) -> None:
    root = _collection(tmp_path, encoder)
    writer = _spawn(WRITER, root, 600)  # holds the lock until killed below
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "locked"
        src = write_jsonl(tmp_path / "more.jsonl", [{"_id": "z", "text": "another writer"}])
        for args in (("upsert", root, src), ("delete", root, "--ids", "seed"), ("compact", root)):
            done = ragfleet(*args)
            assert done.returncode == 2, done
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and f"process {writer.pid}" in lines[0], done.stderr
            assert "Traceback" not in done.stderr
        second = python(
            "import sys\nfrom ragfleet.collection import Collection\n"
            "try:\n    Collection.open(sys.argv[1])\nexcept Exception as e:\n"
            "    print(type(e).__name__, getattr(e, 'pid', None))\n",
            root,
        )
        assert second.stdout.split() == ["CollectionLockedError", str(writer.pid)]
        assert writer.poll() is None  # the refusals above were all made beside a live writer
    finally:
        writer.kill()
        writer.wait(timeout=60)
    assert ragfleet("upsert", root, src).returncode == 0  # the lock died with its holder


def test_readers_beside_a_checkpointing_writer_never_fail(tmp_path: Path, encoder: Any) -> None:
    root = _collection(tmp_path, encoder)
    writer = _spawn(WRITER, root, 12)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "locked"
    readers = [_spawn(READER, root, 10) for _ in range(2)]
    outs = [r.communicate(timeout=120) for r in readers]
    w_out, w_err = writer.communicate(timeout=120)
    assert writer.returncode == 0, w_err
    acked = [frozenset(json.loads(line)) for line in w_out.splitlines()]
    states = {frozenset()} | set(acked)
    opens = 0
    for r, (out, err) in zip(readers, outs, strict=True):
        assert r.returncode == 0, err
        *seen, last = out.splitlines()
        opens += int(last.split()[1])
        for line in seen:  # every snapshot is a state the writer acknowledged (or the next)
            ids = frozenset(json.loads(line)) - {"seed"}
            assert ids in states, (sorted(ids), "not an acknowledged state")
    assert opens >= 10 and len(acked) >= 20, (opens, len(acked))


def test_stats_and_search_beside_a_running_server(tmp_path: Path, encoder: Any) -> None:
    root = _collection(tmp_path, encoder)
    with serving(root, tmp_path) as server:
        status, _ = server.request(
            "POST", "/v1/collections/c/documents", {"documents": [{"doc_id": "a", "text": "new"}]}
        )
        assert status == 200
        before = sorted(p.name for p in root.rglob("*"))
        stats = ragfleet("stats", root, "--json")
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["documents"] == 2  # replayed from the server's log
        assert ragfleet("search", root, "new", "--json").returncode == 0
        assert sorted(p.name for p in root.rglob("*")) == before  # readers wrote nothing
        refused = ragfleet(
            "upsert", root, write_jsonl(tmp_path / "b.jsonl", [{"_id": "b", "text": "b"}])
        )
        assert refused.returncode == 2 and f"process {server.proc.pid}" in refused.stderr
        time.sleep(0.1)


#: A writer killed inside its docstore commit: the transaction has written pages to the
#: file (rows past the manifest's, which reads ignore), so SQLite leaves a hot journal.
KILLED_IN_COMMIT = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size=2")  # spill: pages reach the database file before the commit
db.execute("BEGIN IMMEDIATE")
db.executemany(
    "INSERT INTO chunks (row, chunk_id, doc_id, n, title, text, metadata, content_hash, doc_hash)"
    " VALUES (?, ?, ?, 0, '', ?, '{}', 'h', 'h')",
    [(10_000 + i, f"x{i}", f"x{i}", "z" * 2000) for i in range(200)],
)
os._exit(0)
"""


def _kill_inside_commit(root: Path) -> Path:
    docs = next(root.glob("**/manifest.json")).with_name("docs.sqlite")  # the seed's shard
    assert python(KILLED_IN_COMMIT, docs).returncode == 0
    journal = docs.with_name("docs.sqlite-journal")
    assert journal.exists() and journal.stat().st_size > 0
    return journal


def test_a_reader_waits_for_the_writer_that_rolls_back_a_crashed_commit(
    tmp_path: Path, encoder: Any
) -> None:
    root = _collection(tmp_path, encoder)
    journal = _kill_inside_commit(root)
    seen: list[Any] = []

    def read() -> None:
        try:
            with Collection.open(root, encoder=encoder, read_only=True) as col:
                seen.append(col.doc_ids())
        except Exception as e:
            seen.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(1.5)
    assert reader.is_alive() and not seen  # waiting on the journal, not failed
    with Collection.open(root, encoder=encoder) as col:  # the writer rolls the journal back
        assert col.doc_ids() == ["seed"]
    assert not journal.exists()
    reader.join(30)
    assert seen == [["seed"]]


def test_a_reader_that_no_writer_helps_says_what_to_do(
    tmp_path: Path, encoder: Any, monkeypatch: Any
) -> None:
    from ragfleet.errors import CollectionError
    from ragfleet.index import docstore

    root = _collection(tmp_path, encoder)
    _kill_inside_commit(root)
    monkeypatch.setattr(docstore, "HOT_JOURNAL_WAIT_S", 0.3)
    try:
        Collection.open(root, encoder=encoder, read_only=True).close()
    except CollectionError as e:
        assert "open the collection for writing once" in str(e)
    else:
        raise AssertionError("a reader opened a docstore with a hot journal")
    with Collection.open(root, encoder=encoder) as col:
        assert col.doc_ids() == ["seed"]
    with Collection.open(root, encoder=encoder, read_only=True) as col:
        assert col.doc_ids() == ["seed"]
