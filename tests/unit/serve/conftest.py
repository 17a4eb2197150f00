"""A served collection (the demo corpus, 2 shards) and one key per scope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from fastapi.testclient import TestClient

from ragfleet.serve.auth import KeyStore, new_key
from ragfleet.serve.settings import ServeSettings

ITERATIONS = 1000  # PBKDF2 rounds for test keys (the default is slow on purpose)


@dataclass(frozen=True)
class Keys:
    read: str
    write: str
    admin: str
    other: str  # read+write, restricted to a collection named "other"
    store: KeyStore

    def header(self, who: str | None) -> dict[str, str]:
        if who is None:
            return {}
        if who == "wrong":
            return {"Authorization": "Bearer rf_00000000_not-a-key"}
        return {"Authorization": f"Bearer {getattr(self, who)}"}


@pytest.fixture(scope="session")
def keys() -> Keys:
    made = {
        "read": new_key("reader", ("read",), iterations=ITERATIONS),
        "write": new_key("writer", ("write",), iterations=ITERATIONS),
        "admin": new_key("admin", ("admin",), iterations=ITERATIONS),
        "other": new_key("other", ("read", "write"), ("other",), iterations=ITERATIONS),
    }
    store = KeyStore([record for _, record in made.values()])
    return Keys(*(key for key, _ in made.values()), store=store)


def serve(collections: dict[str, Any], keys: Keys, **settings: Any) -> TestClient:
    from ragfleet.serve.app import create_app

    app = create_app(collections, ServeSettings(**settings), keys.store)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: Any, encoder: Any) -> Iterator[Any]:
    """An empty collection for the write routes (the demo collection is shared read-only)."""
    from ragfleet.collection import Collection

    col = Collection.create(tmp_path_factory.mktemp("scratch") / "c", encoder=encoder)
    yield col
    col.close()


@pytest.fixture(scope="module")
def client(collection_factory: Any, scratch: Any, keys: Keys) -> Iterator[TestClient]:
    """``demo`` (120 SQuAD paragraphs, 2 shards) and ``scratch`` served, no rate limit."""
    collections = {"demo": collection_factory(shards=2), "scratch": scratch}
    with serve(collections, keys, rate_per_s=0) as c:
        yield c
