"""API keys: scopes, collection restrictions, salted hashes, constant-time comparison.

A key is ``rf_<id>_<secret>``: ``id`` (8 hex digits) names its record in the keys file,
``secret`` is 32 random bytes (URL-safe base64). The file stores, per key, only
``PBKDF2-HMAC-SHA256(secret, salt, iterations)`` (RFC 8018 §5.2) with a 16-byte random
salt; the presented key's hash is compared with :func:`hmac.compare_digest`.

PBKDF2 is slow on purpose, too slow to run on every request, so a verified key is
remembered in memory under ``HMAC-SHA256(process_secret, key)`` — a digest that reveals
nothing about the key and cannot be precomputed by a caller. Scopes are ordered:
``admin`` ⊃ ``write`` ⊃ ``read``.

Lifecycle: ``ragfleet keys add | list | revoke | rotate`` edit the file; a server reloads it
when it changes (:meth:`KeyStore.reload_if_changed`, checked at most once a second), so a
revoked or rotated key is refused within seconds, without a restart — remembered
verifications of keys that changed are dropped with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ragfleet.errors import ConfigError, InputError

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
_LEVEL = {s: n for n, s in enumerate(SCOPES)}
DEFAULT_ITERATIONS = 100_000
_CACHE_MAX = 4096


class AuthError(Exception):
    """A request without a valid key (401) or without the right to do this (403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class KeyRecord:
    """One key as stored: never the key itself, only its salted hash."""

    name: str
    key_id: str
    salt: str
    hash: str
    iterations: int
    scopes: tuple[Scope, ...]
    collections: tuple[str, ...] = ()  # empty: every collection
    created: str = ""

    def allows(self, scope: Scope, collection: str | None = None) -> bool:
        """Whether this key may do ``scope`` on ``collection`` (scopes are ordered)."""
        if max(_LEVEL[s] for s in self.scopes) < _LEVEL[scope]:
            return False
        return collection is None or not self.collections or collection in self.collections

    def require(self, scope: Scope, collection: str | None) -> None:
        """Raise ``AuthError`` 403 unless :meth:`allows`, saying which right is missing."""
        if not self.allows(scope):
            raise AuthError(403, "forbidden", f"this key lacks the {scope!r} scope")
        if not self.allows(scope, collection):
            raise AuthError(403, "forbidden", f"this key may not use collection {collection!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KeyRecord:
        scopes = tuple(d["scopes"])
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ConfigError(f"key {d.get('name')!r}: scopes must be among {SCOPES}, got {bad}")
        return cls(
            str(d["name"]), str(d["key_id"]), str(d["salt"]), str(d["hash"]), int(d["iterations"]),
            scopes, tuple(d.get("collections", ())), str(d.get("created", "")),
        )  # fmt: skip


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """``"read,write"`` → ``("read", "write")``; raises :class:`InputError` on an unknown one."""
    out: list[Scope] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part not in SCOPES:
            raise InputError(f"unknown scope {part!r}; choose from {', '.join(SCOPES)}")
        out.append(part)  # type: ignore[arg-type]
    if not out:
        raise InputError("give at least one scope: read, write or admin")
    return tuple(out)


def _hash(secret: str, salt: bytes, iterations: int) -> str:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations).hex()


def new_key(
    name: str,
    scopes: Sequence[Scope],
    collections: Sequence[str] = (),
    iterations: int = DEFAULT_ITERATIONS,
) -> tuple[str, KeyRecord]:
    """A fresh key and its record; the key is returned once and never stored."""
    if not name.strip():
        raise InputError("a key needs a non-empty name")
    key_id = secrets.token_hex(4)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    salt = secrets.token_bytes(16)
    record = KeyRecord(
        name, key_id, salt.hex(), _hash(secret, salt, iterations), iterations,
        tuple(scopes), tuple(collections), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )  # fmt: skip
    return f"rf_{key_id}_{secret}", record


def parse_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed ``rf_<id>_<secret>``, else ``None`` (cheap)."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "rf" or len(parts[1]) != 8 or not parts[2]:
        return None
    return parts[1], parts[2]


def _read_records(path: Path) -> list[KeyRecord]:
    if not path.is_file():
        raise ConfigError(f"keys file {path} does not exist; create it with `ragfleet keys add`")
    try:
        doc = json.loads(path.read_text("utf-8"))
        return [KeyRecord.from_dict(d) for d in doc["keys"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"keys file {path} is not valid: {e}") from e


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class KeyStore:
    """The keys of one server, loaded from a JSON file ``{"keys": [record, ...]}``."""

    def __init__(self, records: Sequence[KeyRecord], path: Path | None = None) -> None:
        self._by_id = {r.key_id: r for r in records}
        self._pepper = secrets.token_bytes(32)
        self._verified: dict[bytes, KeyRecord] = {}
        self._lock = threading.Lock()
        self.path = path
        self._signature = _signature(path) if path is not None else None
        self._checked = time.monotonic()

    @property
    def records(self) -> list[KeyRecord]:
        return list(self._by_id.values())

    @classmethod
    def load(cls, path: str | Path) -> KeyStore:
        path = Path(path)
        return cls(_read_records(path), path)

    def reload_if_changed(self, every_s: float = 1.0) -> bool:
        """Re-read the keys file if it changed (checked at most every ``every_s``); a file
        that became unreadable keeps the keys in force (and says so by returning False)."""
        if self.path is None or time.monotonic() - self._checked < every_s:
            return False
        self._checked = time.monotonic()
        signature = _signature(self.path)
        if signature == self._signature:
            return False
        try:
            records = _read_records(self.path)
        except ConfigError:
            return False  # a half-written or broken file: keep serving the keys we have
        with self._lock:
            self._by_id = {r.key_id: r for r in records}
            self._verified = {
                m: r for m, r in self._verified.items() if self._by_id.get(r.key_id) == r
            }
            self._signature = signature
        return True

    def save(self, path: str | Path) -> None:
        """Write the file with mode 0600, atomically (temp file, fsync, rename)."""
        path = Path(path)
        doc = {"keys": [asdict(r) for r in self._by_id.values()]}
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(doc, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def add(self, record: KeyRecord) -> None:
        if any(r.name == record.name for r in self._by_id.values()):
            raise InputError(f"a key named {record.name!r} exists already; choose another name")
        self._by_id[record.key_id] = record

    def named(self, name: str) -> KeyRecord:
        found = [r for r in self._by_id.values() if r.name == name or r.key_id == name]
        if not found:
            names = ", ".join(sorted(r.name for r in self._by_id.values())) or "none"
            raise InputError(f"no key named {name!r} (keys: {names})")
        return found[0]

    def revoke(self, name: str) -> KeyRecord:
        """Remove the key named ``name`` (or with that id); returns its record."""
        record = self.named(name)
        del self._by_id[record.key_id]
        return record

    def rotate(self, name: str, iterations: int | None = None) -> tuple[str, KeyRecord]:
        """A new secret (and id) for the key named ``name``, same scopes and collections;
        the old key stops working. Returns the new key, shown once, and its record."""
        old = self.revoke(name)
        key, record = new_key(old.name, old.scopes, old.collections, iterations or old.iterations)
        self._by_id[record.key_id] = record
        return key, record

    def remembered(self, key: str) -> KeyRecord | None:
        """The record of ``key`` if it was verified before (no hashing)."""
        memo = self._memo(key)
        with self._lock:
            return self._verified.get(memo)

    def record(self, key_id: str) -> KeyRecord | None:
        return self._by_id.get(key_id)

    def record_named(self, name: str) -> KeyRecord | None:
        return next((r for r in self._by_id.values() if r.name == name), None)

    def check(self, key: str) -> KeyRecord | None:
        """Verify ``key`` by its salted hash (slow: PBKDF2); remembered once valid."""
        parsed = parse_key(key)
        record = self._by_id.get(parsed[0]) if parsed is not None else None
        if parsed is None or record is None:
            return None
        digest = _hash(parsed[1], bytes.fromhex(record.salt), record.iterations)
        if not hmac.compare_digest(digest, record.hash):
            return None
        with self._lock:
            if len(self._verified) >= _CACHE_MAX:
                self._verified.clear()
            self._verified[self._memo(key)] = record
        return record

    def verify(self, key: str) -> KeyRecord | None:
        """The record of ``key``, or ``None`` if it is not a valid key."""
        return self.remembered(key) or self.check(key)

    def _memo(self, key: str) -> bytes:
        return hmac.new(self._pepper, key.encode(), hashlib.sha256).digest()

    def authorize(
        self, authorization: str | None, scope: Scope, collection: str | None = None
    ) -> KeyRecord:
        """The key's record if ``Authorization: Bearer KEY`` may do ``scope`` on
        ``collection``; raises :class:`AuthError` (401 or 403) otherwise."""
        if not authorization:
            raise AuthError(401, "unauthenticated", "send an API key: Authorization: Bearer KEY")
        kind, _, key = authorization.partition(" ")
        if kind.lower() != "bearer" or not key.strip():
            raise AuthError(401, "unauthenticated", "the Authorization header must be Bearer KEY")
        record = self.verify(key.strip())
        if record is None:
            raise AuthError(401, "invalid_key", "this API key is not valid")
        record.require(scope, collection)
        return record
