"""The key lifecycle (issue 15): ``ragfleet keys add | list | revoke | rotate``, and a
running server that refuses a revoked or rotated key within seconds, without a restart."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.conftest import demo_docs
from tests.reliability.procs import make_key, ragfleet, serving

from ragfleet.collection import Collection


def _status(server: Any, key: str) -> int:
    server.key = key
    status, _ = server.request("GET", "/v1/collections/c/stats")
    return status


def _until(predicate: Any, seconds: float = 5.0) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.1)
    return time.monotonic() - t0


def test_revoke_and_rotate_take_effect_without_a_restart(tmp_path: Path, encoder: Any) -> None:
    root = tmp_path / "c"
    Collection.build(root, demo_docs(5), encoder=encoder).close()
    keys = tmp_path / "keys.json"
    ops = make_key(keys, "admin")  # what `serving` uses, key "tester"
    (tmp_path / "key.txt").write_text(ops)
    reader = ragfleet("keys", "add", "reader", "--scopes", "read", "--file", keys).stdout.strip()
    listed = json.loads(ragfleet("keys", "list", "--file", keys, "--json").stdout)["keys"]
    assert [k["name"] for k in listed] == ["tester", "reader"]
    assert reader not in json.dumps(listed) and all("hash" not in k for k in listed)
    with serving(root, tmp_path) as server:
        assert _status(server, reader) == 200
        done = ragfleet("keys", "revoke", "reader", "--file", keys)
        assert done.returncode == 0, done.stderr
        took = _until(lambda: _status(server, reader) == 401)
        assert _status(server, ops) == 200
        rotated = ragfleet("keys", "rotate", "tester", "--file", keys)
        new = rotated.stdout.strip()
        assert rotated.returncode == 0 and new.startswith("rf_") and new != ops
        _until(lambda: _status(server, ops) == 401)
        assert _status(server, new) == 200
    print(f"\na revoked key was refused {took:.1f} s after `ragfleet keys revoke`")
    missing = ragfleet("keys", "revoke", "nobody", "--file", keys)
    assert missing.returncode == 2 and "no key named 'nobody'" in missing.stderr
