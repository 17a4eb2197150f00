"""Centroid placement keeps documents together; probing every shard equals unsharded search."""

from __future__ import annotations

import shutil
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.cluster.kmeans import Centroids, fit_centroids, sample_rows
from ragfleet.errors import CollectionError, InputError

QUERIES = [
    "Which NFL team won Super Bowl 50?",
    "Where is Warsaw located?",
    "Who designed the Palace of Culture?",
    "What stadium hosted the game?",
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, encoder):  # type: ignore[no-untyped-def]
    """A 1-shard collection of 48 demo paragraphs and its 3-shard centroid reshard."""
    from tests.conftest import demo_docs

    from ragfleet.collection import Collection
    from ragfleet.collection.reshard import reshard_to

    root = tmp_path_factory.mktemp("kmeans")
    one = Collection.build(root / "one", demo_docs(48), encoder=encoder)
    assert reshard_to(one.path, root / "three", 3, "centroids", seed=0) == 48
    three = Collection.open(root / "three", encoder=encoder, read_only=True)
    centroids = Centroids.load(three.path)
    assert three.placement.kind == "centroids"
    yield one, three, centroids
    one.close()
    three.close()


def test_every_document_lives_on_the_shard_of_its_mean_vector(pair) -> None:  # type: ignore[no-untyped-def]
    _, three, centroids = pair
    shards_of: dict[str, set[int]] = defaultdict(set)
    vectors_of: dict[str, list[np.ndarray]] = defaultdict(list)
    for shard in three.shards:
        n = shard.dense.ntotal
        vecs = shard.dense.faiss_index.reconstruct_n(0, n)
        for row, chunk in shard.fetch(list(range(n))).items():
            shards_of[chunk.doc_id].add(shard.shard_id)
            vectors_of[chunk.doc_id].append(vecs[row])
    assert all(len(s) == 1 for s in shards_of.values())  # all chunks of a doc together
    for doc_id, vecs in vectors_of.items():
        scores = np.stack(vecs).mean(0) @ centroids.vectors.T
        assert shards_of[doc_id] == {int(np.argmax(scores))}
    assert sum(s.stats()["documents"] for s in three.shards) == 48
    assert len(shards_of) == 48 and len({s for v in shards_of.values() for s in v}) > 1


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_all_shards_probed_equals_unsharded(pair, mode: str) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.fleet import Fleet

    one, three, _ = pair
    with Fleet.open(three.path, probe_shards=3, encoder=one.encoder) as fleet:
        for q in QUERIES:
            a, b = one.search(q, k=10, mode=mode), fleet.search(q, k=10, mode=mode)
            assert [h.chunk_id for h in a.hits] == [h.chunk_id for h in b.hits], q
            for ha, hb in zip(a.hits, b.hits, strict=True):
                assert hb.score == pytest.approx(ha.score, abs=1e-5)


def test_one_probe_searches_only_the_nearest_shard(pair) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.fleet import Fleet

    one, three, centroids = pair
    with Fleet.open(three.path, probe_shards=1, encoder=one.encoder) as fleet:
        for q in QUERIES:
            nearest = int(centroids.route(one.encoder.encode([q], kind="query"), 1)[0, 0])
            res = fleet.search(q, k=5, mode="dense")
            assert res.hits and {h.shard for h in res.hits} == {nearest}
            assert res.coverage == 1.0  # shards not probed on purpose are not missing


def test_centroids_round_trip_and_missing_centroids_error(pair, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.fleet import Fleet

    one, three, centroids = pair
    loaded = Centroids.load(three.path)
    np.testing.assert_array_equal(loaded.vectors, centroids.vectors)
    with pytest.raises(CollectionError, match="no readable centroids"):
        Centroids.load(tmp_path)
    plain = tmp_path / "plain"
    shutil.copytree(three.path, plain)
    (plain / "centroids.npy").unlink()
    with pytest.raises(CollectionError, match="has no centroids"):
        Fleet.open(plain, probe_shards=1, encoder=one.encoder)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6), st.integers(1, 6))
def test_route_is_nearest_first(seed: int, n: int, probe: int) -> None:
    rng = np.random.default_rng(seed)
    c = Centroids(rng.standard_normal((n, 8)).astype(np.float32))
    q = rng.standard_normal((5, 8)).astype(np.float32)
    probe = min(probe, n)
    routed = c.route(q, probe)
    scores = q @ c.vectors.T
    assert routed.shape == (5, probe)
    for i in range(5):
        assert len(set(routed[i].tolist())) == probe
        assert routed[i, 0] == int(np.argmax(scores[i]))
        assert np.all(np.diff(scores[i, routed[i]]) <= 0)  # nearest first


def test_l2_scores_are_negative_squared_distance() -> None:
    rng = np.random.default_rng(0)
    c = Centroids(rng.standard_normal((4, 3)).astype(np.float32), metric="l2")
    x = rng.standard_normal((2, 3)).astype(np.float32)
    want = -((x[:, None, :] - c.vectors[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(c.scores(x), want, rtol=1e-5, atol=1e-5)


def test_fit_separates_well_separated_clusters() -> None:
    rng = np.random.default_rng(0)
    centers = np.eye(4, 16, dtype=np.float32)
    x = np.repeat(centers, 50, axis=0) + 0.01 * rng.standard_normal((200, 16)).astype(np.float32)
    c = fit_centroids(x, 4, seed=0)
    assigned = np.argmax(c.scores(x), axis=1).reshape(4, 50)
    assert all(len(set(row.tolist())) == 1 for row in assigned)  # each cluster on one shard
    assert len({row[0] for row in assigned.tolist()}) == 4  # and the four on four shards


def test_bad_inputs_raise() -> None:
    with pytest.raises(InputError, match="n_shards <= sample size"):
        fit_centroids(np.zeros((2, 4), np.float32), 3)
    with pytest.raises(InputError, match="probe_shards"):
        Centroids(np.eye(2, dtype=np.float32)).route(np.eye(2, dtype=np.float32), 3)
    assert sample_rows(10, 4, seed=1).tolist() == sorted(set(sample_rows(10, 4, seed=1).tolist()))
