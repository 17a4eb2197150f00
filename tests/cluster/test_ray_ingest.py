"""Ray Data bulk embedding equals in-process embedding and resumes from finished blocks."""

from __future__ import annotations

import numpy as np


def test_embed_with_ray_equals_local_and_resumes(ray_cluster, encoder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import demo_docs

    from ragfleet.cluster.ray_ingest import block_key, embed_with_ray, pending_blocks

    texts = [d.text for d in demo_docs(40)]  # blocks of 16: [0, 16), [16, 32), [32, 40)
    want = encoder.encode(texts, kind="document")
    cache = tmp_path / "cache"
    cache.mkdir()
    # the state a crash leaves after blocks 0 and 2 finished: their files, not block 1's
    for lo, hi in ((0, 16), (32, 40)):
        np.save(cache / f"{block_key('minilm-int8', texts[lo:hi])}.npy", want[lo:hi])
    assert pending_blocks(texts, "minilm-int8", cache, 16) == [1]
    before = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npy")}
    got = embed_with_ray(texts, "minilm-int8", 8, 1, cache_dir=cache, block_size=16)
    np.testing.assert_allclose(got, want, atol=1e-5)  # block 1 came from Ray, equal to local
    ray_block = cache / f"{block_key('minilm-int8', texts[16:32])}.npy"
    np.testing.assert_allclose(np.load(ray_block), want[16:32], atol=1e-5)
    after = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npy")}
    assert all(after[name] == t for name, t in before.items())  # finished blocks untouched
    assert len(after) == 3 and pending_blocks(texts, "minilm-int8", cache, 16) == []
