"""Writes follow the collection's placement (issue 16): after upserts, replacements and
deletes on hash- and centroid-placed collections, after reshard, reindex and compaction,
every live document is on exactly one shard, deleted ones on none, and search never
returns a chunk twice. The four reported seam defects are regressions here too."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from tests.conftest import demo_docs

from ragfleet.cluster.kmeans import Centroids
from ragfleet.collection import Collection
from ragfleet.collection.generations import gc_generations
from ragfleet.collection.reshard import reshard
from ragfleet.config import ChunkerConfig, CollectionConfig, ShardingConfig
from ragfleet.types import Document

IDS = [f"p{i}" for i in range(10)]
_ENCODER: list[Any] = []


def _placed_docs(col: Collection) -> dict[str, set[int]]:
    """doc_id → the shards holding a live chunk of it."""
    out: dict[str, set[int]] = {}
    for shard in col.shards:
        for c in shard.live_chunks():
            out.setdefault(c.doc_id, set()).add(shard.shard_id)
    return out


class PlacedWrites(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="ragfleet-placement-"))
        self.root = self.tmp / "c"
        self.model: dict[str, str] = {}
        self.n = itertools.count()
        self.col: Collection | None = None
        self.encoder = _ENCODER[0]

    @initialize(placement=st.sampled_from(["hash", "centroids"]))
    def build(self, placement: str) -> None:
        config = CollectionConfig(
            sharding=ShardingConfig(n_shards=2), chunker=ChunkerConfig.parse("window:24:4")
        )
        seed = [Document(d.doc_id, d.text[:300]) for d in demo_docs(12)]
        Collection.build(self.root, seed, config, encoder=self.encoder).close()
        self.model = {d.doc_id: d.text for d in seed}
        if placement == "centroids":
            reshard(self.root, 3, "centroids")
        self.col = Collection.open(self.root, encoder=self.encoder)

    def teardown(self) -> None:
        if self.col is not None:
            self.col.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(
        ids=st.lists(
            st.sampled_from([*IDS, "56be4db0acb8001400a502ec"]), min_size=1, max_size=3, unique=True
        )
    )
    def upsert(self, ids: list[str]) -> None:
        assert self.col is not None
        texts = {d: f"fresh text {next(self.n)} about rivers, bowls and castles {d}" for d in ids}
        self.col.upsert([Document(d, t) for d, t in texts.items()])
        self.model.update(texts)

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        assert self.col is not None
        pool = [*sorted(self.model), "never-existed"]
        ids = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        existed = self.col.delete(ids)
        assert existed == sum(d in self.model for d in ids)  # deletes find their shard
        for d in ids:
            self.model.pop(d, None)

    @rule()
    def compact(self) -> None:
        assert self.col is not None
        self.col.compact(0.0)

    @rule(n=st.integers(1, 4), placement=st.sampled_from(["hash", "centroids"]))
    def reshard(self, n: int, placement: str) -> None:
        assert self.col is not None
        if placement == "centroids" and len(self.model) < n:
            return
        self.col.close()
        reshard(self.root, n, placement)  # type: ignore[arg-type]
        self.col = Collection.open(self.root, encoder=self.encoder)
        assert self.col.config.sharding.placement == placement
        assert self.col.config.sharding.n_shards == n

    @rule()
    def reindex(self) -> None:
        assert self.col is not None
        placement = self.col.config.sharding.placement
        self.col.reindex("minilm-int8")
        assert self.col.config.sharding.placement == placement

    @invariant()
    def every_document_lives_on_exactly_one_shard(self) -> None:
        if self.col is None:
            return
        placed = _placed_docs(self.col)
        assert sorted(placed) == sorted(self.model)
        assert all(len(s) == 1 for s in placed.values()), placed
        for q in ("rivers and castles", "Super Bowl", "fresh text"):
            hits = self.col.search(q, k=20, mode="hybrid").hits
            ids = [h.chunk_id for h in hits]
            assert len(ids) == len(set(ids)), f"a chunk returned twice for {q!r}"
            assert {h.doc_id for h in hits} <= set(self.model)


@pytest.mark.slow
def test_writes_follow_the_placement_through_reshard_reindex_and_compaction(encoder: Any) -> None:
    _ENCODER[:] = [encoder]
    settings(
        max_examples=8, stateful_step_count=10, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )(PlacedWrites).TestCase().runTest()  # fmt: skip


def test_writes_after_a_centroid_reshard_go_to_the_documents_shard(
    tmp_path: Path, encoder: Any
) -> None:
    """The reported defect: after resharding by centroids, delete returned 0 and left the
    document live, and an upsert put a second copy on another shard."""
    root = tmp_path / "c"
    Collection.build(root, demo_docs(48), encoder=encoder).close()
    reshard(root, 3, "centroids")
    with Collection.open(root, encoder=encoder) as col:
        assert col.config.sharding.placement == "centroids"
        placed = _placed_docs(col)
        moved = [d for d, s in placed.items() if s != {0}]
        assert moved, "k-means should spread the documents"
        victim, changed = moved[0], moved[1]
        assert col.delete([victim]) == 1 and victim not in _placed_docs(col)
        home = placed[changed]
        col.upsert([Document(changed, "An entirely new text about glaciers and valleys.")])
        assert _placed_docs(col)[changed] == home  # replaced where it lives
        ids = [h.chunk_id for h in col.search("glaciers and valleys", k=20).hits]
        assert len(ids) == len(set(ids))
        new_text = "Marmalade, jam and preserves are made from fruit and sugar."
        col.upsert([Document("brand-new", new_text)])
        vec = encoder.encode([new_text], kind="document")
        want = int(np.argmax(vec @ Centroids.load(col.data_path).vectors.T))
        assert _placed_docs(col)["brand-new"] == {want}  # placed by its nearest centroid
        col.reindex("minilm-int8")  # keeps the placement, centroids in the new space
        assert col.config.sharding.placement == "centroids"
        assert _placed_docs(col)["brand-new"] == {want}


def test_a_fleet_opens_the_live_generation_before_and_after_reindex_and_gc(
    tmp_path: Path, encoder: Any
) -> None:
    from ragfleet.fleet import Fleet

    root = tmp_path / "c"
    Collection.build(root, demo_docs(10), encoder=encoder).close()
    with Fleet.open(root, encoder=encoder) as fleet:
        assert len(fleet.doc_ids()) == 10
    with Collection.open(root, encoder=encoder) as col:
        col.reindex("minilm-int8")
        col.upsert(demo_docs(20)[10:])
        assert len(col.doc_ids()) == 20
    with Fleet.open(root, encoder=encoder, replicas=2) as fleet:
        assert len(fleet.doc_ids()) == 20
        assert fleet.stats()["documents"] == 20
    assert gc_generations(root) == ["root"]
    with Fleet.open(root, encoder=encoder) as fleet:
        assert len(fleet.doc_ids()) == 20


def test_a_writable_fleet_writes_through_the_shard_owners(tmp_path: Path, encoder: Any) -> None:
    from ragfleet.errors import CollectionLockedError, ReadOnlyError
    from ragfleet.fleet import Fleet

    root = tmp_path / "c"
    config = CollectionConfig(sharding=ShardingConfig(n_shards=2))
    Collection.build(root, demo_docs(6), config, encoder=encoder).close()
    with Fleet.open(root, encoder=encoder, replicas=2) as reader, pytest.raises(ReadOnlyError):
        reader.delete(["x"])
    with Fleet.open(root, encoder=encoder, replicas=2, writable=True) as fleet:
        with pytest.raises(CollectionLockedError):
            Collection.open(root, encoder=encoder)
        before = fleet.generation
        fleet.upsert([Document("owl", "Owls hunt at night with silent feathers.")])
        assert fleet.generation != before
        for _ in range(6):  # every replica, whichever is picked, sees the write at once
            assert fleet.search("silent night hunters", k=1).hits[0].doc_id == "owl"
        assert fleet.delete(["owl", demo_docs(1)[0].doc_id]) == 2
        assert "owl" not in {h.doc_id for h in fleet.search("owls hunting", k=10).hits}
    with Collection.open(root, encoder=encoder, read_only=True) as col:
        assert len(col.doc_ids()) == 5 and "owl" not in col.doc_ids()


def test_a_caller_error_through_a_replicated_fleet_fails_that_request_only(
    collection_factory: Any, encoder: Any
) -> None:
    from ragfleet.errors import InputError
    from ragfleet.fleet import Fleet

    col = collection_factory(2)
    with Fleet.open(col.path, encoder=encoder, replicas=2) as fleet:
        with pytest.raises(InputError, match="ef_search"):
            fleet.search("Super Bowl", ef_search=0)
        with pytest.raises(InputError, match="k must be"):
            fleet.search("Super Bowl", k=10**9)
        for shard in fleet.shards:
            assert shard.errors == 0 and max(shard._down_until) == 0.0
        assert fleet.search("Super Bowl", k=3).coverage == 1.0
