"""API keys at rest: salted PBKDF2 hashes, file mode, scope order, and ``ragfleet keys add``."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ragfleet.errors import ConfigError, InputError
from ragfleet.serve.auth import AuthError, KeyRecord, KeyStore, new_key, parse_scopes


def test_the_stored_record_is_pbkdf2_of_the_secret_and_never_the_key(tmp_path: Path) -> None:
    key, record = new_key("svc", ("read",), iterations=1000)
    prefix, key_id, secret = key.split("_", 2)
    assert prefix == "rf" and key_id == record.key_id and len(record.salt) == 32
    want = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(record.salt), 1000).hex()
    assert record.hash == want
    store = KeyStore([record])
    store.save(tmp_path / "keys.json")
    text = (tmp_path / "keys.json").read_text()
    assert secret not in text and key not in text
    assert stat.S_IMODE((tmp_path / "keys.json").stat().st_mode) == 0o600
    assert KeyStore.load(tmp_path / "keys.json").verify(key) == record


def test_two_keys_never_share_salt_or_hash() -> None:
    (_, a), (_, b) = new_key("a", ("read",), iterations=10), new_key("b", ("read",), iterations=10)
    assert a.salt != b.salt and a.hash != b.hash and a.key_id != b.key_id


@pytest.mark.parametrize(
    ("scopes", "read", "write", "admin"),
    [(("read",), True, False, False), (("write",), True, True, False),
     (("admin",), True, True, True), (("read", "write"), True, True, False)],
)  # fmt: skip
def test_scopes_are_ordered(scopes: tuple[str, ...], read: bool, write: bool, admin: bool) -> None:
    _, record = new_key("k", scopes, iterations=10)  # type: ignore[arg-type]
    assert (record.allows("read"), record.allows("write"), record.allows("admin")) == (
        read, write, admin,
    )  # fmt: skip


def test_authorize_names_what_is_missing() -> None:
    key, record = new_key("k", ("read",), ("a",), iterations=10)
    store = KeyStore([record])
    assert store.authorize(f"Bearer {key}", "read", "a") == record
    with pytest.raises(AuthError) as e:
        store.authorize(f"Bearer {key}", "write", "a")
    assert (e.value.status, e.value.message) == (403, "this key lacks the 'write' scope")
    with pytest.raises(AuthError) as e:
        store.authorize(f"Bearer {key}", "read", "b")
    assert e.value.status == 403


def test_parse_scopes_and_bad_files(tmp_path: Path) -> None:
    assert parse_scopes(" read , admin ") == ("read", "admin")
    with pytest.raises(InputError, match="unknown scope 'root'"):
        parse_scopes("read,root")
    with pytest.raises(InputError, match="at least one scope"):
        parse_scopes(" , ")
    with pytest.raises(ConfigError, match="does not exist"):
        KeyStore.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"keys": [{"name": "x"}]}))
    with pytest.raises(ConfigError, match="not valid"):
        KeyStore.load(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="scopes must be among"):
        KeyRecord.from_dict({"name": "x", "key_id": "1", "salt": "", "hash": "",
                             "iterations": 1, "scopes": ["god"]})  # fmt: skip


def cli_app() -> typer.Typer:
    """The ragfleet command with the serve commands registered (as ``cli/app.py`` does)."""
    from ragfleet.cli import bench, serve_cmds

    app = typer.Typer()
    bench.register(app)
    serve_cmds.register(app)
    return app


def test_cli_keys_add_prints_the_key_once(tmp_path: Path) -> None:
    app = cli_app()
    file = tmp_path / "keys.json"
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "keys",
            "add",
            "ci",
            "--scopes",
            "read,write",
            "--collections",
            "a,b",
            "--file",
            str(file),
        ],
    )
    assert res.exit_code == 0, res.output
    key = res.stdout.strip()
    assert key.startswith("rf_") and key not in file.read_text()
    record = KeyStore.load(file).verify(key)
    assert record is not None and record.collections == ("a", "b")
    assert record.scopes == ("read", "write")
    again = runner.invoke(app, ["keys", "add", "ci", "--scopes", "read", "--file", str(file)])
    assert again.exit_code == 2 and "exists already" in again.output
