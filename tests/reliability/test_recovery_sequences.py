"""The exact sequences that once made collections unopenable (issue 14), as regressions:
in the library, through the CLI, and through the server with each way it can be stopped."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.procs import python, ragfleet, serving, write_jsonl

from ragfleet.collection import Collection
from ragfleet.config import CollectionConfig, ShardingConfig
from ragfleet.index.manifest import ShardManifest

X = {"_id": "x", "text": "The Denver Broncos won Super Bowl 50 in Santa Clara."}
Y = {"_id": "y", "text": "Marmalade is made from the peel and juice of citrus fruit."}

#: A child process: open, upsert x, upsert y, then delete or replace y, then die without
#: closing (os._exit or SIGKILL) — before any checkpoint.
CHILD = """
import os, signal, sys
from ragfleet.collection import Collection
from ragfleet.types import Document
path, how, ending = sys.argv[1], sys.argv[2], sys.argv[3]
col = Collection.open(path)
col.upsert([Document("x", {x!r})])
col.upsert([Document("y", {y!r})])
if how == "delete":
    col.delete(["y"])
else:
    col.upsert([Document("y", "Replaced: sourdough bread rises with a wild yeast starter.")])
print("acknowledged", flush=True)
if ending == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
os._exit(0)
""".format(x=X["text"], y=Y["text"])


def _empty(tmp: Path, encoder: Any, shards: int = 2) -> Path:
    root = tmp / "c"
    config = CollectionConfig(sharding=ShardingConfig(n_shards=shards))
    Collection.create(root, config, encoder=encoder).close()
    return root


@pytest.mark.parametrize("how", ["delete", "replace"])
@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_a_process_dying_after_a_delete_or_replace_leaves_an_openable_collection(
    tmp_path: Path, encoder: Any, how: str, ending: str
) -> None:
    root = _empty(tmp_path, encoder, shards=1)  # x and y on one shard, as in the report
    done = python(CHILD, root, how, ending)
    assert "acknowledged" in done.stdout, done.stderr
    with Collection.open(root, encoder=encoder) as col:
        docs = {d: col.search(d, k=1).hits for d in ("Broncos", "marmalade", "sourdough")}
        assert col.doc_ids() == (["x"] if how == "delete" else ["x", "y"])
        assert docs["Broncos"][0].doc_id == "x"
        if how == "replace":
            assert docs["sourdough"][0].doc_id == "y"
    for _ in range(2):  # and it keeps reopening
        with Collection.open(root, encoder=encoder, read_only=True) as col:
            assert col.stats()["documents"] == (1 if how == "delete" else 2)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_the_server_survives_every_way_it_is_stopped(
    tmp_path: Path, encoder: Any, sig: signal.Signals
) -> None:
    """POST x, POST y, DELETE y, then a signal: the collection reopens with x alone, and on
    SIGINT/SIGTERM/SIGHUP the server checkpointed first and said so."""
    root = _empty(tmp_path, encoder)
    with serving(root, tmp_path) as server:
        for doc in (X, Y):
            status, out = server.request(
                "POST",
                "/v1/collections/c/documents",
                {"documents": [{"doc_id": doc["_id"], "text": doc["text"]}]},
            )
            assert status == 200, out
        status, out = server.request("DELETE", "/v1/collections/c/documents/y")
        assert status == 200 and out["deleted"], out
        code = server.stop(sig)
        log = server.log.read_text()
    stats = ragfleet("stats", root, "--json")
    assert stats.returncode == 0, stats.stderr
    info = json.loads(stats.stdout)
    assert info["documents"] == 1
    if sig is signal.SIGKILL:
        assert code == -signal.SIGKILL
        return
    assert "checkpointed and closed" in log, log
    for shard in sorted(root.glob("shard-*")):
        seqs = [s["wal_seq"] for s in info["shards"]]
        assert ShardManifest.load(shard).checkpoint_seq in seqs  # nothing left to replay
    assert all(s["wal_seq"] == s["checkpoint_seq"] for s in info["shards"]), info["shards"]
    assert ragfleet("search", root, "Broncos", "--k", "1", "--json").returncode == 0


def test_the_cli_sequence_reopens(tmp_path: Path) -> None:
    """ingest, upsert, delete through the CLI, each its own process: every one reopens."""
    src = write_jsonl(tmp_path / "x.jsonl", [X])
    assert ragfleet("ingest", src, "-c", tmp_path / "c", "-q").returncode == 0
    assert (
        ragfleet("upsert", tmp_path / "c", write_jsonl(tmp_path / "y.jsonl", [Y]), "-q").returncode
        == 0
    )
    assert ragfleet("delete", tmp_path / "c", "--ids", "y").returncode == 0
    stats = ragfleet("stats", tmp_path / "c", "--json")
    assert stats.returncode == 0 and json.loads(stats.stdout)["documents"] == 1, stats.stderr
