"""A shard's ``manifest.json``: which checkpoint files are live, and how far the WAL is in them.

Checkpoint protocol (a crash at ANY point leaves a readable checkpoint and a WAL that
replays to the same state):

1. Write the new index files under NEW names, ``<role>.<checkpoint no>[.ext]`` (see
   :func:`checkpoint_name`, e.g. ``dense.000007.faiss``, ``sparse.000007/``), never over a
   file the current manifest references.
2. :func:`commit_checkpoint`: fsync the new files and the shard directory, hash them, then
   atomically replace ``manifest.json`` (temp file, fsync, rename, fsync dir) with one
   whose ``files`` point at them and whose ``checkpoint_seq`` is the last WAL seq they
   contain. The rename is the commit point.
3. :func:`gc_unreferenced`: delete checkpoint files the manifest no longer references
   (and stale temp files).
4. ``WriteAheadLog.truncate_through(checkpoint_seq)``.

Crash before the rename: the old manifest still names the old files, which are intact;
the new files are orphans that :func:`gc_unreferenced` removes (call it when the shard
opens, before it writes any checkpoint file, so that names never collide); the WAL still
holds every record after the old ``checkpoint_seq``. Crash after the rename: the new
manifest names durable files; the WAL may still hold records ``<= checkpoint_seq``, which
replay skips (replay is idempotent: it applies only ``seq > checkpoint_seq``), and old
files may linger until the next :func:`gc_unreferenced`. Steps 3 and 4 may run in either
order, and re-running them is harmless.

This module is longer than most (~320 lines) on purpose: the checkpoint protocol, the
manifest's validation and the files' hashing are one contract, read and changed together.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from ragfleet.errors import CollectionError, InputError
from ragfleet.index.atomic import atomic_write_bytes, fsync_dir, fsync_file

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "FileEntry",
    "ShardManifest",
    "checkpoint_name",
    "commit_checkpoint",
    "gc_unreferenced",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
_CHECKPOINT_RE = re.compile(r"^[A-Za-z0-9_-]+\.\d{6,}(\.[A-Za-z0-9]+)?$")
_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.[^.]+\.tmp$")  # atomic_path's temp names
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def checkpoint_name(role: str, number: int, ext: str = "") -> str:
    """The file name of ``role`` in checkpoint ``number``: ``f"{role}.{number:06d}{ext}"``."""
    name = f"{role}.{number:06d}{ext}"
    if number < 0 or not _CHECKPOINT_RE.match(name):
        raise InputError(f"invalid checkpoint file name {name!r}: use [A-Za-z0-9_-] roles")
    return name


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One checkpoint file (or directory) relative to the shard directory.

    For a directory, ``size`` is the total of its files and ``sha256`` hashes the lines
    ``relpath NUL size NUL sha256(file) LF`` of its files in sorted order.
    """

    name: str
    sha256: str
    size: int
    kind: Literal["file", "dir"] = "file"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _CHECKPOINT_RE.match(self.name):
            raise InputError(
                f"file name {self.name!r} is not a checkpoint name like 'dense.000001.faiss'"
            )
        if not isinstance(self.sha256, str) or not _SHA256_RE.match(self.sha256):
            raise InputError(f"sha256 of {self.name!r} is not 64 lowercase hex digits")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InputError(f"size of {self.name!r} must be an int >= 0, got {self.size!r}")
        if self.kind not in ("file", "dir"):
            raise InputError(f"kind of {self.name!r} must be 'file' or 'dir', got {self.kind!r}")


@dataclass(frozen=True, slots=True)
class ShardManifest:
    """The durable description of one shard's last checkpoint.

    ``checkpoint_seq`` is the last WAL seq included in the checkpoint files; ``files``
    maps a role (``"dense"``, ``"sparse"``, …) to its :class:`FileEntry`.
    """

    shard_id: int
    generation: int
    n_rows: int
    n_live: int
    contract_fingerprint: str
    checkpoint_seq: int
    files: Mapping[str, FileEntry] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        for name in ("shard_id", "generation", "n_rows", "n_live", "checkpoint_seq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"manifest {name} must be an int >= 0, got {value!r}")
        if self.n_live > self.n_rows:
            raise InputError(f"manifest n_live {self.n_live} exceeds n_rows {self.n_rows}")
        if not isinstance(self.contract_fingerprint, str) or not self.contract_fingerprint:
            raise InputError("manifest contract_fingerprint must be a non-empty str")
        if self.format_version != FORMAT_VERSION:
            raise InputError(
                f"manifest format_version {self.format_version!r} is not supported (this "
                f"ragfleet reads {FORMAT_VERSION}); open it with the version that wrote it"
            )
        files = dict(self.files)
        for role, entry in files.items():
            if not isinstance(role, str) or not role or not isinstance(entry, FileEntry):
                raise InputError(f"manifest files[{role!r}] must map a role to a FileEntry")
        names = [e.name for e in files.values()]
        if len(set(names)) != len(names):
            raise InputError(f"manifest lists one file under two roles: {sorted(names)}")
        object.__setattr__(self, "files", MappingProxyType(files))

    def path(self, shard_dir: str | os.PathLike[str], role: str) -> Path:
        """The absolute path of ``role``'s file; CollectionError if the role is absent."""
        if role not in self.files:
            raise CollectionError(
                f"shard manifest has no {role!r} file (has {sorted(self.files)}); "
                "the shard was checkpointed by a different version or is incomplete"
            )
        return Path(shard_dir) / self.files[role].name

    def to_json(self) -> str:
        """The manifest as pretty, key-sorted JSON text."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "files"}
        data["files"] = {role: asdict(e) for role, e in self.files.items()}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ShardManifest:
        """Parse and validate; raises InputError saying what is wrong."""
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"manifest is not valid JSON: {e}") from e
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise InputError("manifest must be a JSON object with a 'files' object")
        try:
            files = {role: FileEntry(**entry) for role, entry in data.pop("files").items()}
            return cls(files=files, **data)
        except TypeError as e:  # a missing or unknown key
            raise InputError(f"manifest fields are wrong: {e}") from e

    def save(self, shard_dir: str | os.PathLike[str]) -> None:
        """Write ``manifest.json`` atomically (temp file, fsync, rename, fsync dir)."""
        atomic_write_bytes(Path(shard_dir) / MANIFEST_NAME, self.to_json().encode("utf-8"))

    @classmethod
    def load(cls, shard_dir: str | os.PathLike[str], *, verify: bool = False) -> ShardManifest:
        """Read and validate ``manifest.json``; with ``verify`` also check every file.

        Raises:
            CollectionError: the manifest is missing or invalid, or (``verify``) a file
                it references is missing or differs in kind, size or sha256.
        """
        path = Path(shard_dir) / MANIFEST_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            raise CollectionError(
                f"{path} does not exist: not a shard directory, or never checkpointed"
            ) from e
        except (OSError, UnicodeDecodeError) as e:
            raise CollectionError(f"cannot read {path}: {e}") from e
        try:
            manifest = cls.from_json(text)
        except InputError as e:
            raise CollectionError(f"{path} is corrupt: {e}; restore the shard") from e
        if verify:
            manifest.verify(shard_dir)
        return manifest

    def verify(self, shard_dir: str | os.PathLike[str], *, check_hash: bool = True) -> None:
        """Check that every referenced file exists with its kind, size and sha256."""
        for role, entry in self.files.items():
            path = Path(shard_dir) / entry.name
            if not path.exists():
                raise CollectionError(f"shard {role} file {path} is missing; restore the shard")
            got = _describe(path)
            if got.kind != entry.kind or got.size != entry.size:
                raise CollectionError(
                    f"shard {role} file {path} is a {got.kind} of {got.size} bytes, the "
                    f"manifest says a {entry.kind} of {entry.size}; restore the shard"
                )
            if check_hash and got.sha256 != entry.sha256:
                raise CollectionError(f"shard {role} file {path} fails its sha256 check")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _describe(path: Path) -> FileEntry:
    """A FileEntry of ``path`` as it is on disk now (see FileEntry for directories)."""
    if path.is_symlink() or not (path.is_file() or path.is_dir()):
        raise InputError(f"checkpoint file {path} must be a regular file or a directory")
    if path.is_file():
        return FileEntry(path.name, _sha256_file(path), path.stat().st_size)
    h, total = hashlib.sha256(), 0
    for f in sorted(p for p in path.rglob("*") if not p.is_dir()):
        if f.is_symlink() or not f.is_file():
            raise InputError(f"checkpoint directory {path} holds {f}, not a regular file")
        size = f.stat().st_size
        h.update(f"{f.relative_to(path).as_posix()}\0{size}\0{_sha256_file(f)}\n".encode())
        total += size
    return FileEntry(path.name, h.hexdigest(), total, "dir")


def _fsync_tree(path: Path) -> None:
    """fsync a file, or every file and directory under a directory (deepest first)."""
    if path.is_file():
        fsync_file(path)
        return
    for p in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        (fsync_file if p.is_file() else fsync_dir)(p)
    fsync_dir(path)


def _live_names(shard_dir: Path) -> set[str]:
    """Names referenced by the manifest now on disk (empty if there is none)."""
    if not (shard_dir / MANIFEST_NAME).exists():
        return set()
    return {e.name for e in ShardManifest.load(shard_dir).files.values()}


def commit_checkpoint(
    shard_dir: str | os.PathLike[str],
    new_files: Mapping[str, str | os.PathLike[str]],
    manifest: ShardManifest,
) -> ShardManifest:
    """Steps 1–2 of the protocol: make ``new_files`` durable and atomically commit them.

    Args:
        shard_dir: the shard directory; every new file must be a direct child of it,
            named by :func:`checkpoint_name`, and not referenced by the current manifest.
        new_files: role → path of the file (or directory) written for this checkpoint.
        manifest: the new manifest; its ``files`` may carry roles over from the last
            checkpoint (they must still exist), ``new_files`` are added or replace them.

    Returns:
        The manifest as written, with the sha256 and size of every new file.
    """
    shard_dir = Path(shard_dir)
    live = _live_names(shard_dir)
    entries: dict[str, FileEntry] = {}
    for role, p in new_files.items():
        path = Path(p)
        if not path.exists():
            raise InputError(f"checkpoint file {path} for role {role!r} does not exist")
        if path.parent.resolve() != shard_dir.resolve():
            raise InputError(f"checkpoint file {path} must be directly inside {shard_dir}")
        if path.name in live:
            raise InputError(
                f"{path.name} is referenced by the current manifest; write the new "
                "checkpoint under a new name (checkpoint_name(role, number + 1, ext))"
            )
        _fsync_tree(path)
        entries[role] = _describe(path)
    for role, entry in manifest.files.items():
        if role not in entries and not (shard_dir / entry.name).exists():
            raise InputError(f"carried-over {role} file {entry.name} is missing in {shard_dir}")
    fsync_dir(shard_dir)
    committed = replace(manifest, files={**manifest.files, **entries})
    committed.save(shard_dir)
    return committed


def gc_unreferenced(shard_dir: str | os.PathLike[str], manifest: ShardManifest | None) -> list[str]:
    """Step 3: delete checkpoint files and stale temp files ``manifest`` does not reference.

    Only names that look like checkpoint files (:func:`checkpoint_name`) or like the temp
    files of an atomic write of one (or of the manifest) are touched; ``docs.sqlite``,
    ``wal/`` and anything else stay. Call it with no checkpoint in progress: after each
    commit, and when a shard opens (with ``None`` if it has no manifest yet), so that the
    orphans of a checkpoint that crashed before its commit never collide with new names.

    Returns:
        The names removed, sorted.
    """
    shard_dir = Path(shard_dir)
    keep = {e.name for e in manifest.files.values()} if manifest is not None else set()
    removed = []
    for p in shard_dir.iterdir():
        temp = _TEMP_RE.match(p.name)
        target = temp.group("target") if temp else None
        is_temp = target is not None and (target == MANIFEST_NAME or _CHECKPOINT_RE.match(target))
        if p.name in keep or not (is_temp or _CHECKPOINT_RE.match(p.name)):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
        removed.append(p.name)
    if removed:
        fsync_dir(shard_dir)
    return sorted(removed)
