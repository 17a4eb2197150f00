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


def test_cli_ingest_with_ray_equals_local_ingest(ray_cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`ragfleet ingest --ray` writes the same collection as the in-process ingest."""
    import json

    from tests.conftest import demo_docs
    from typer.testing import CliRunner

    from ragfleet.cli.app import app
    from ragfleet.collection import Collection

    source = tmp_path / "docs.jsonl"
    source.write_text(
        "".join(
            json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text}) + "\n"
            for d in demo_docs(12)
        )
    )
    runner = CliRunner()
    for name, extra in (("ray", ["--ray", "--ray-workers", "1"]), ("local", [])):
        res = runner.invoke(app, ["ingest", str(source), "-c", str(tmp_path / name), "-q", *extra])
        assert res.exit_code == 0, res.output
    assert (tmp_path / ".ray.embed-cache").is_dir()  # finished blocks kept for a resume
    with Collection.open(tmp_path / "ray") as a, Collection.open(tmp_path / "local") as b:
        for q in ("Super Bowl halftime", "Denver defense"):
            ha, hb = a.search(q, k=5, mode="dense").hits, b.search(q, k=5, mode="dense").hits
            assert [h.chunk_id for h in ha] == [h.chunk_id for h in hb]
            assert all(abs(x.score - y.score) < 1e-4 for x, y in zip(ha, hb, strict=True))
