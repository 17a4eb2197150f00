"""Shared fixtures: the real int8 MiniLM encoder (loaded once per session) and small
collections built from the bundled demo corpus (SQuAD v1.1 dev paragraphs)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from tests import services

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo" / "corpus.jsonl"
SHARED_DATA = REPO.parent / "shared" / "data"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop the services an earlier run left behind (it was killed, or crashed natively),
    and turn SIGTERM/SIGHUP into KeyboardInterrupt so that this run's fixtures stop theirs."""
    for leftover in services.reap_stale():
        print(f"stopped a test service left by an earlier run: {leftover}")
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)


def demo_docs(n: int) -> list:  # type: ignore[type-arg]
    """The first ``n`` paragraphs of the bundled demo corpus as Documents."""
    from ragfleet.types import Document

    out = []
    with DEMO.open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out.append(Document(d["_id"], d["text"], d["title"], d["metadata"]))
            if len(out) == n:
                break
    return out


@pytest.fixture(scope="session")
def encoder():  # type: ignore[no-untyped-def]
    from ragfleet.embed.registry import load_encoder

    return load_encoder("minilm-int8")


@pytest.fixture(scope="session")
def small_docs() -> list:  # type: ignore[type-arg]
    return demo_docs(120)


@pytest.fixture(scope="session")
def collection_factory(tmp_path_factory, encoder):  # type: ignore[no-untyped-def]
    """Build (once per distinct config) a collection of ``small_docs`` and open it."""
    from ragfleet.collection import Collection

    built: dict[tuple[int, str, bool], Collection] = {}

    def make(shards: int = 1, spec: str = "flat", tokens: bool = False):  # type: ignore[no-untyped-def]
        from ragfleet.config import CollectionConfig, IndexConfig, ShardingConfig, TokensConfig

        key = (shards, spec, tokens)
        if key not in built:
            config = CollectionConfig(
                sharding=ShardingConfig(n_shards=shards),
                index=IndexConfig(spec=spec),
                tokens=TokensConfig(enabled=tokens),
            )
            path = tmp_path_factory.mktemp(f"col-{shards}-{spec}-{int(tokens)}") / "c"
            built[key] = Collection.build(path, demo_docs(120), config, encoder=encoder)
        return built[key]

    yield make
    for col in built.values():
        col.close()


@pytest.fixture
def fresh_collection(tmp_path, encoder) -> Iterator:  # type: ignore[type-arg]
    """An empty 2-shard collection, per test (for writes)."""
    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, ShardingConfig

    col = Collection.create(
        tmp_path / "c", CollectionConfig(sharding=ShardingConfig(n_shards=2)), encoder=encoder
    )
    yield col
    col.close()
