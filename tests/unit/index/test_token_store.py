"""Token vectors in the write batch (WAL format) and in a shard's segments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.config import CollectionConfig, TokensConfig
from ragfleet.errors import InputError
from ragfleet.index.manifest import ShardManifest
from ragfleet.index.shard import Shard
from ragfleet.index.tokens_codec import TokenCodec
from ragfleet.index.writebatch import ChunkRecord, WriteBatch

D = 8
CODEC = TokenCodec("int8", D)
CONFIG = CollectionConfig(tokens=TokensConfig(enabled=True))


def rec(doc: str, n: int, n_tokens: int, seed: int = 0, tokens: Any = True) -> ChunkRecord:
    rng = np.random.default_rng(seed + n)
    packed = CODEC.encode(rng.normal(size=(n_tokens, D))) if tokens is True else tokens
    return ChunkRecord(
        chunk_id=f"{doc}#{n}", doc_id=doc, n=n, text=f"{doc} {n}", title="", metadata={},
        content_hash=f"c{doc}{n}", doc_hash=f"h{doc}{seed}",
        vector=rng.normal(size=D).astype(np.float32),
        tokens=packed,
    )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5), seed=st.integers(0, 99))
def test_a_batch_with_tokens_round_trips(lengths: list[int], seed: int) -> None:
    batch = WriteBatch(1, tuple(rec("d", n, t, seed) for n, t in enumerate(lengths)))
    back = WriteBatch.decode(batch.encode())
    assert back == batch
    for a, b in zip(back.upserts, batch.upserts, strict=True):
        assert a.tokens is not None and np.array_equal(a.tokens, b.tokens)


def test_a_batch_mixing_records_with_and_without_tokens_is_refused() -> None:
    with pytest.raises(InputError, match="token vectors"):
        WriteBatch(1, (rec("d", 0, 2), rec("e", 0, 2, tokens=None)))
    with pytest.raises(InputError, match="packed uint8"):
        rec("e", 0, 2, tokens=np.zeros((2, 3), np.float32))


def test_truncated_token_bytes_are_refused() -> None:
    data = WriteBatch(1, (rec("d", 0, 3),)).encode()
    with pytest.raises(InputError, match="token bytes"):
        WriteBatch.decode(data[:-5])


def _shard(path: Path, **kw: Any) -> Shard:
    return Shard(path, 0, CONFIG, D, "fp", **kw)


def _blocks(shard: Shard, ids: list[str]) -> list[np.ndarray]:
    b = shard.token_blocks(ids)
    return [b.codes[b.offsets[i] : b.offsets[i + 1]] for i in range(len(ids))]


def test_checkpoints_write_one_segment_each_and_reopen_memory_mapped(tmp_path: Path) -> None:
    s = _shard(tmp_path / "s")
    first = [rec("a", 0, 3), rec("a", 1, 5)]
    s.apply(first)
    s.checkpoint()
    s.apply([rec("b", 0, 2)])
    s.checkpoint()
    s.apply([rec("a", 0, 4, seed=1)], ["b"])  # replace a, delete b: only in the log
    roles = sorted(r for r in ShardManifest.load(tmp_path / "s").files if r.startswith("tokens"))
    assert roles == ["tokens@0", "tokens@2"]
    reader = _shard(tmp_path / "s", read_only=True)  # replays the log in memory
    s.close()
    again = _shard(tmp_path / "s")
    for view in (reader, again):
        assert view.tokens is not None and view.tokens.n_rows == 4
        (a0,) = _blocks(view, ["a#0"])
        assert np.array_equal(a0, rec("a", 0, 4, seed=1).tokens)
        assert not view.token_blocks(["b#0", "a#1"]).found.any()  # deleted, replaced
        assert np.isnan(view.late_scores(np.ones((1, D), np.float32) / D**0.5, ["b#0"])).all()
    assert isinstance(again.tokens.segments[0].codes, np.memmap)  # type: ignore[union-attr]
    assert len(again.tokens.segments) == 3  # type: ignore[union-attr]
    reader.close()
    again.close()


def test_late_scores_on_the_shard_are_maxsim_of_the_stored_tokens(tmp_path: Path) -> None:
    from ragfleet.index.maxsim import maxsim_batch
    from ragfleet.index.tokens_codec import unit_rows

    s = _shard(tmp_path / "s")
    recs = [rec("a", 0, 3), rec("a", 1, 6), rec("a", 2, 1)]
    s.apply(recs)
    q = unit_rows(np.random.default_rng(5).normal(size=(4, D)))
    blocks = [CODEC.decode(r.tokens) for r in recs]  # type: ignore[arg-type]
    expected = maxsim_batch(q, np.concatenate(blocks), np.cumsum([0, 3, 6, 1]))
    np.testing.assert_allclose(s.late_scores(q, ["a#0", "a#1", "a#2"]), expected, rtol=1e-5)
    s.close()
