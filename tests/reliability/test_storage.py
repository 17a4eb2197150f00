"""The disk says no (issue 14): a collection on read-only media is searched, and a full
disk fails writes with one line that says what was applied — never a lost or phantom write.

Both need a real mount (a read-only bind mount, a small tmpfs), so both are skipped with
the reason where this process may not mount (not root, no CAP_SYS_ADMIN).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.procs import python, ragfleet, write_jsonl
from tests.reliability.test_model_based import _tree_digest

from ragfleet.collection import Collection
from ragfleet.config import ChunkerConfig, CollectionConfig, ShardingConfig
from ragfleet.errors import StorageError
from ragfleet.types import Document


def _mount(*args: str) -> bool:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def read_only_view(src: Path, at: Path) -> Iterator[Path]:
    """``src`` seen through a read-only bind mount at ``at``."""
    at.mkdir()
    if not (_mount("--bind", str(src), str(at)) and _mount("-o", "remount,bind,ro", str(at))):
        subprocess.run(["umount", "-l", str(at)], capture_output=True, check=False)
        pytest.skip("cannot make a read-only bind mount here (needs root or CAP_SYS_ADMIN)")
    try:
        yield at
    finally:
        subprocess.run(["umount", "-l", str(at)], check=False)


@contextlib.contextmanager
def small_disk(at: Path, size: str) -> Iterator[Path]:
    at.mkdir()
    if not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(at)):
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")
    try:
        yield at
    finally:
        subprocess.run(["umount", "-l", str(at)], check=False)


def _config() -> CollectionConfig:
    return CollectionConfig(
        sharding=ShardingConfig(n_shards=2), chunker=ChunkerConfig.parse("window:32:4")
    )


def _doc(i: int) -> Document:
    words = " ".join(f"word{(i * 13 + j) % 997}" for j in range(60))
    return Document(f"d{i:04d}", f"document {i} tag zq{i} {words}")


def test_a_collection_on_read_only_media_is_searched(tmp_path: Path, encoder: Any) -> None:
    src = tmp_path / "src" / "c"
    with Collection.create(src, _config(), encoder=encoder) as col:
        col.upsert([_doc(i) for i in range(6)])
    # two more acknowledged writes that were never checkpointed: the writer died
    died = python(
        "import os, sys\nfrom ragfleet.collection import Collection\n"
        "from ragfleet.types import Document\n"
        "col = Collection.open(sys.argv[1])\ncol.upsert([Document('late', 'written zqlate')])\n"
        "col.delete(['d0000'])\nos._exit(0)\n",
        src,
    )
    assert died.returncode == 0, died.stderr
    before = _tree_digest(src)
    with read_only_view(src.parent, tmp_path / "ro") as ro:
        c = ro / "c"
        with Collection.open(c, encoder=encoder, read_only=True) as col:
            assert col.stats()["documents"] == 6
            assert col.search("zqlate", k=1, mode="sparse").hits[0].doc_id == "late"
            assert "d0000" not in col.doc_ids()
        for args in (("stats", c, "--json"), ("search", c, "zqlate", "--json")):
            done = ragfleet(*args)
            assert done.returncode == 0, done.stderr
        assert json.loads(ragfleet("stats", c, "--json").stdout)["documents"] == 6
        with pytest.raises(StorageError, match="read-only"):
            Collection.open(c, encoder=encoder)
        refused = ragfleet(
            "upsert", c, write_jsonl(tmp_path / "n.jsonl", [{"_id": "n", "text": "x"}])
        )
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
        assert "read-only" in refused.stderr and "Traceback" not in refused.stderr
    assert _tree_digest(src) == before


def test_a_full_disk_fails_writes_with_what_was_applied(tmp_path: Path, encoder: Any) -> None:
    with small_disk(tmp_path / "disk", "16m") as disk:
        root = disk / "c"
        col = Collection.create(root, _config(), encoder=encoder)
        (disk / "filler").write_bytes(b"\0" * (11 << 20))  # freed at the end: room again
        acked: dict[str, str] = {}
        failures: list[StorageError] = []
        i = 0
        while len(failures) < 3 and i < 20_000:
            batch = [_doc(i + j) for j in range(16)]
            i += 16
            try:
                col.upsert(batch)
            except StorageError as e:
                failures.append(e)
                assert "\n" not in str(e)
                assert e.applied in (False, None), e  # a call that failed is not acked
                if e.applied is None:  # part of it landed: the message counts what
                    assert "were written before it (durable)" in str(e), e
                continue
            acked.update({d.doc_id: d.text for d in batch})
        assert failures and len(acked) > 16, (len(failures), len(acked))
        assert all("space" in str(e).lower() for e in failures), failures
        # while the disk is full: reads work, and the CLI fails a write with one line
        stats = ragfleet("stats", root, "--json")
        assert stats.returncode == 0, stats.stderr
        assert set(acked) <= set(json_ids(root))
        src = write_jsonl(
            tmp_path / "more.jsonl",
            [{"_id": f"m{j}", "text": "more words " * 300} for j in range(40)],
        )
        with contextlib.suppress(StorageError):
            col.close()  # the final checkpoint may not fit: the log keeps every write
        full = ragfleet("upsert", root, src, "-q")
        assert full.returncode == 2, full
        assert len(full.stderr.strip().splitlines()) == 1 and "Traceback" not in full.stderr
        # room again: every acknowledged write is there, and a partly applied call holds
        # whole documents only
        (disk / "filler").unlink()
        with Collection.open(root, encoder=encoder) as col:
            ids = set(col.doc_ids())
            assert set(acked) <= ids, sorted(set(acked) - ids)[:5]
            extra = ids - set(acked)
            for d in sorted(extra):
                if d.startswith("m"):
                    continue
                hit = col.search(f"zq{int(d[1:])}", k=1, mode="sparse").hits[0]
                assert hit.doc_id == d
            col.upsert([_doc(90_000)])  # and it takes writes again


def json_ids(root: Path) -> list[str]:
    """The collection's document ids, read by a separate reader process."""
    done = python(
        "import json, sys\nfrom ragfleet.collection import Collection\n"
        "print(json.dumps(Collection.open(sys.argv[1], read_only=True).doc_ids()))\n",
        root,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))
