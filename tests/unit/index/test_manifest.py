"""ShardManifest validation and atomic save; the checkpoint commit / gc protocol."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ragfleet.errors import CollectionError, InputError
from ragfleet.index.manifest import (
    MANIFEST_NAME,
    FileEntry,
    ShardManifest,
    checkpoint_name,
    commit_checkpoint,
    gc_unreferenced,
)
from ragfleet.index.wal import WriteAheadLog


def manifest(**kw: Any) -> ShardManifest:
    fields: dict[str, Any] = {
        "shard_id": 2,
        "generation": 1,
        "n_rows": 10,
        "n_live": 8,
        "contract_fingerprint": "fp-abc",
        "checkpoint_seq": 5,
    }
    fields.update(kw)
    return ShardManifest(**fields)


def write_checkpoint(shard: Path, number: int, content: bytes) -> dict[str, Path]:
    """A dense file and a sparse directory, as a shard would write for checkpoint ``number``."""
    dense = shard / checkpoint_name("dense", number, ".faiss")
    dense.write_bytes(content)
    sparse = shard / checkpoint_name("sparse", number)
    (sparse / "sub").mkdir(parents=True)
    (sparse / "vocab.json").write_bytes(b'{"a": 1}')
    (sparse / "sub" / "postings.npy").write_bytes(content * 2)
    return {"dense": dense, "sparse": sparse}


def test_checkpoint_name() -> None:
    assert checkpoint_name("dense", 7, ".faiss") == "dense.000007.faiss"
    assert checkpoint_name("sparse", 1234567) == "sparse.1234567"
    for bad in [("de/nse", 1, ""), ("dense", -1, ""), ("dense", 1, ".tar.gz"), ("", 1, "")]:
        with pytest.raises(InputError):
            checkpoint_name(*bad)


def test_save_load_round_trip_is_atomic(tmp_path: Path) -> None:
    entry = FileEntry("dense.000001.faiss", "0" * 64, 3)
    m = manifest(files={"dense": entry})
    m.save(tmp_path)
    assert ShardManifest.load(tmp_path) == m
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]  # no temp file left
    m2 = manifest(generation=2, checkpoint_seq=9)
    m2.save(tmp_path)  # replaces the old one
    assert ShardManifest.load(tmp_path) == m2
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["format_version"] == 1


def test_files_mapping_is_read_only_and_path_resolves(tmp_path: Path) -> None:
    m = manifest(files={"dense": FileEntry("dense.000001.faiss", "a" * 64, 1)})
    with pytest.raises(TypeError):
        m.files["x"] = m.files["dense"]  # type: ignore[index]
    assert m.path(tmp_path, "dense") == tmp_path / "dense.000001.faiss"
    with pytest.raises(CollectionError, match="no 'sparse' file"):
        m.path(tmp_path, "sparse")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"shard_id": -1}, "shard_id must be"),
        ({"n_rows": 1.5}, "n_rows must be"),
        ({"checkpoint_seq": True}, "checkpoint_seq must be"),
        ({"n_live": 11}, "exceeds n_rows"),
        ({"contract_fingerprint": ""}, "contract_fingerprint"),
        ({"format_version": 99}, "not supported"),
        ({"files": {"dense": "dense.000001.faiss"}}, "FileEntry"),
        (
            {
                "files": {
                    "a": FileEntry("x.000001", "0" * 64, 1),
                    "b": FileEntry("x.000001", "0" * 64, 1),
                }
            },
            "two roles",
        ),
    ],
)
def test_manifest_validation(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        manifest(**kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"name": "../etc/passwd"}, "not a checkpoint name"),
        ({"name": "docs.sqlite"}, "not a checkpoint name"),
        ({"sha256": "XYZ"}, "64 lowercase hex"),
        ({"size": -3}, "size"),
        ({"kind": "link"}, "kind"),
    ],
)
def test_file_entry_validation(kw: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"name": "dense.000001.faiss", "sha256": "f" * 64, "size": 1}
    with pytest.raises(InputError, match=message):
        FileEntry(**{**fields, **kw})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"files": {}}', "fields are wrong"),
        ("EXTRA", "fields are wrong"),
        ("NEGATIVE", "n_live must be"),
    ],
)
def test_load_raises_collection_error_saying_what_is_wrong(
    tmp_path: Path, text: str | None, message: str
) -> None:
    good = json.loads(manifest().to_json())
    if text == "EXTRA":
        text = json.dumps({**good, "surprise": 1})
    elif text == "NEGATIVE":
        text = json.dumps({**good, "n_live": -1})
    if text is not None:
        (tmp_path / MANIFEST_NAME).write_text(text)
    with pytest.raises(CollectionError, match=message):
        ShardManifest.load(tmp_path)


def test_commit_checkpoint_hashes_files_and_directories(tmp_path: Path) -> None:
    files = write_checkpoint(tmp_path, 1, b"dense-v1")
    committed = commit_checkpoint(tmp_path, files, manifest(generation=1))
    assert ShardManifest.load(tmp_path, verify=True) == committed
    dense = committed.files["dense"]
    assert dense == FileEntry(
        "dense.000001.faiss", hashlib.sha256(b"dense-v1").hexdigest(), len(b"dense-v1")
    )
    sha = {
        "sub/postings.npy": hashlib.sha256(b"dense-v1" * 2).hexdigest(),
        "vocab.json": hashlib.sha256(b'{"a": 1}').hexdigest(),
    }
    lines = [f"sub/postings.npy\0{16}\0{sha['sub/postings.npy']}\n"]
    lines += [f"vocab.json\0{8}\0{sha['vocab.json']}\n"]
    sparse = committed.files["sparse"]
    assert sparse.kind == "dir" and sparse.size == 16 + 8
    assert sparse.sha256 == hashlib.sha256("".join(lines).encode()).hexdigest()


def test_verify_detects_changed_and_missing_files(tmp_path: Path) -> None:
    files = write_checkpoint(tmp_path, 1, b"12345678")
    commit_checkpoint(tmp_path, files, manifest())
    files["dense"].write_bytes(b"87654321")  # same size, different bytes
    with pytest.raises(CollectionError, match="sha256"):
        ShardManifest.load(tmp_path, verify=True)
    ShardManifest.load(tmp_path).verify(tmp_path, check_hash=False)  # size still matches
    files["dense"].write_bytes(b"short")
    with pytest.raises(CollectionError, match="5 bytes"):
        ShardManifest.load(tmp_path, verify=True)
    files["dense"].unlink()
    with pytest.raises(CollectionError, match="missing"):
        ShardManifest.load(tmp_path, verify=True)


def test_second_checkpoint_then_gc_removes_only_old_checkpoint_files(tmp_path: Path) -> None:
    commit_checkpoint(tmp_path, write_checkpoint(tmp_path, 1, b"v1"), manifest(generation=1))
    (tmp_path / "docs.sqlite").write_bytes(b"sqlite")
    (tmp_path / "wal").mkdir()
    (tmp_path / ".manifest.json.abc123.tmp").write_bytes(b"crashed temp")
    (tmp_path / ".dense.000002.faiss.q1w2.tmp").write_bytes(b"crashed temp")
    (tmp_path / ".docs.sqlite.zz.tmp").write_bytes(b"someone else's temp")
    m2 = commit_checkpoint(
        tmp_path, write_checkpoint(tmp_path, 2, b"v2"), manifest(generation=2, checkpoint_seq=9)
    )
    assert ShardManifest.load(tmp_path, verify=True) == m2
    removed = gc_unreferenced(tmp_path, m2)
    assert removed == sorted(
        [
            ".dense.000002.faiss.q1w2.tmp",
            ".manifest.json.abc123.tmp",
            "dense.000001.faiss",
            "sparse.000001",
        ]
    )
    left = sorted(p.name for p in tmp_path.iterdir())
    kept = [".docs.sqlite.zz.tmp", "dense.000002.faiss", "docs.sqlite", MANIFEST_NAME]
    assert left == sorted([*kept, "sparse.000002", "wal"])
    assert gc_unreferenced(tmp_path, m2) == []  # idempotent


def test_commit_refuses_to_overwrite_a_live_file(tmp_path: Path) -> None:
    files = write_checkpoint(tmp_path, 1, b"v1")
    commit_checkpoint(tmp_path, files, manifest())
    with pytest.raises(InputError, match="referenced by the current manifest"):
        commit_checkpoint(tmp_path, {"dense": files["dense"]}, manifest(generation=2))


def test_commit_validates_its_inputs(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    outside = tmp_path / "sub" / "dense.000001.faiss"
    outside.write_bytes(b"x")
    with pytest.raises(InputError, match="directly inside"):
        commit_checkpoint(tmp_path, {"dense": outside}, manifest())
    with pytest.raises(InputError, match="does not exist"):
        commit_checkpoint(tmp_path, {"dense": tmp_path / "dense.000001.faiss"}, manifest())
    (tmp_path / "dense.faiss").write_bytes(b"x")
    with pytest.raises(InputError, match="not a checkpoint name"):
        commit_checkpoint(tmp_path, {"dense": tmp_path / "dense.faiss"}, manifest())
    ghost = manifest(files={"bm25": FileEntry("bm25.000001", "0" * 64, 0, "dir")})
    (tmp_path / "dense.000002.faiss").write_bytes(b"x")
    with pytest.raises(InputError, match="carried-over bm25"):
        commit_checkpoint(tmp_path, {"dense": tmp_path / "dense.000002.faiss"}, ghost)
    assert not (tmp_path / MANIFEST_NAME).exists()  # nothing was committed


def test_carried_over_roles_are_kept(tmp_path: Path) -> None:
    m1 = commit_checkpoint(tmp_path, write_checkpoint(tmp_path, 1, b"v1"), manifest())
    new_dense = tmp_path / checkpoint_name("dense", 2, ".faiss")
    new_dense.write_bytes(b"v2")
    m2 = commit_checkpoint(tmp_path, {"dense": new_dense}, manifest(generation=2, files=m1.files))
    assert m2.files["sparse"] == m1.files["sparse"] and m2.files["dense"].name == new_dense.name
    assert gc_unreferenced(tmp_path, m2) == ["dense.000001.faiss"]
    ShardManifest.load(tmp_path, verify=True)


def test_crash_before_the_manifest_rename_leaves_the_old_checkpoint(tmp_path: Path) -> None:
    """Simulate dying after step 1 (new files written, manifest not yet replaced)."""
    old = commit_checkpoint(tmp_path, write_checkpoint(tmp_path, 1, b"v1"), manifest())
    write_checkpoint(tmp_path, 2, b"v2")  # ... crash here ...
    assert ShardManifest.load(tmp_path, verify=True) == old
    assert gc_unreferenced(tmp_path, old) == ["dense.000002.faiss", "sparse.000002"]


def test_replay_after_a_checkpoint_is_idempotent(tmp_path: Path) -> None:
    """Crash after the rename but before WAL truncation: replay skips covered records."""
    wal = WriteAheadLog(tmp_path / "wal")
    for seq in range(1, 8):
        wal.append(seq, f"batch {seq}".encode())
    m = commit_checkpoint(tmp_path, write_checkpoint(tmp_path, 1, b"state@5"), manifest())
    # ... crash before wal.truncate_through(5): the log still holds 1..7 ...
    wal.close()
    wal = WriteAheadLog(tmp_path / "wal")
    first = [s for s, _ in wal.replay(after_seq=m.checkpoint_seq)]
    wal.truncate_through(m.checkpoint_seq)
    again = [s for s, _ in wal.replay(after_seq=m.checkpoint_seq)]
    assert first == again == [6, 7]
