"""The token-vector half of :class:`~ragfleet.index.shard.Shard` (late interaction).

A collection with ``tokens.enabled`` logs each chunk's packed token vectors with its write
batch (:mod:`ragfleet.index.writebatch`), applies them to a :class:`TokenStore` beside the
dense and sparse indexes, and checkpoints them as a new memory-mapped segment
(:mod:`ragfleet.index.tokens`) under the same manifest, so they recover, compact, reindex
and reshard with the rest of the shard. Reads: :meth:`ShardTokens.token_blocks` returns the
packed tokens of live chunks (the coordinator scores them), :meth:`ShardTokens.late_scores`
scores them here by MaxSim (:mod:`ragfleet.index.maxsim`) and returns one float per chunk —
the two ways a remote shard can serve a late-interaction reranker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ragfleet.errors import CollectionError, InputError
from ragfleet.index.maxsim import maxsim_batch
from ragfleet.index.tokens import TokenStore, check_block
from ragfleet.index.tokens_codec import TokenCodec

if TYPE_CHECKING:
    from ragfleet.config import CollectionConfig
    from ragfleet.index.manifest import ShardManifest
    from ragfleet.index.rowtable import RowTable
    from ragfleet.index.rwlock import RWLock
    from ragfleet.index.writebatch import ChunkRecord


@dataclass(frozen=True)
class TokenBlocks:
    """Packed token vectors of some chunks, stacked: chunk ``i`` owns
    ``codes[offsets[i]:offsets[i+1]]``; ``found[i]`` is False for a chunk that is not live
    here (its slice is empty)."""

    codec: str
    codes: npt.NDArray[np.uint8]
    offsets: npt.NDArray[np.int64]
    found: npt.NDArray[np.bool_]


class ShardTokens:
    """Token vectors over the state :class:`~ragfleet.index.shard.Shard` maintains."""

    path: Path
    shard_id: int
    dim: int
    config: CollectionConfig
    rows: RowTable
    tokens: TokenStore | None
    _lock: RWLock

    @property
    def token_codec(self) -> TokenCodec | None:
        t = self.config.tokens
        return TokenCodec(t.codec, self.dim) if t.enabled else None

    def _load_tokens(self, manifest: ShardManifest | None, n_rows: int) -> None:
        codec = self.token_codec
        if codec is None:
            self.tokens = None
            return
        files = manifest.files if manifest is not None else {}
        self.tokens = TokenStore.load(self.path, files, codec.bytes_per_token)
        if self.tokens.n_rows != n_rows:
            raise CollectionError(
                f"shard {self.shard_id} at {self.path}: token vectors cover "
                f"{self.tokens.n_rows} rows, the manifest names {n_rows}; rebuild the shard"
            )

    def _check_tokens(self, upserts: Sequence[ChunkRecord]) -> None:
        codec = self.token_codec
        for r in upserts:
            if codec is None:
                if r.tokens is not None:
                    raise InputError(
                        f"chunk {r.chunk_id!r} carries token vectors but the collection does "
                        "not store them; build it with token vectors (--token-vectors)"
                    )
                continue
            if r.tokens is None:
                raise InputError(
                    f"chunk {r.chunk_id!r} has no token vectors; this collection stores them "
                    f"({codec.name}): embed with the collection's writer"
                )
            check_block(r.tokens, codec.bytes_per_token)

    def _apply_tokens(self, first_row: int, upserts: Sequence[ChunkRecord]) -> None:
        if self.tokens is not None:
            self.tokens.add(first_row, [r.tokens for r in upserts if r.tokens is not None])

    def token_rows(self, rows: Sequence[int]) -> list[npt.NDArray[np.uint8]] | None:
        """The packed tokens of ``rows`` (rebuilds copy them), ``None`` without a store."""
        with self._lock.read():
            return None if self.tokens is None else [np.array(b) for b in self.tokens.blocks(rows)]

    def token_blocks(self, chunk_ids: Sequence[str]) -> TokenBlocks:
        """The packed token vectors of the live chunks among ``chunk_ids``, stacked."""
        with self._lock.read():
            store, codec = self._store()
            blocks = []
            found = np.zeros(len(chunk_ids), dtype=bool)
            for i, cid in enumerate(chunk_ids):
                row = self._live_row(cid)
                if row is None:
                    blocks.append(np.zeros((0, codec.bytes_per_token), dtype=np.uint8))
                else:
                    blocks.append(store.block(row))
                    found[i] = True
            offsets = np.cumsum([0, *(len(b) for b in blocks)], dtype=np.int64)
            codes = (
                np.concatenate(blocks)
                if blocks
                else np.zeros((0, codec.bytes_per_token), dtype=np.uint8)
            )
        return TokenBlocks(codec.name, codes, offsets, found)

    def late_scores(
        self, query_tokens: npt.NDArray[np.float32], chunk_ids: Sequence[str]
    ) -> npt.NDArray[np.float32]:
        """MaxSim of ``query_tokens`` (unit rows ``[m, d]``) against each chunk's stored
        tokens, here on the shard; NaN for a chunk that is not live here."""
        blocks = self.token_blocks(chunk_ids)
        codec = TokenCodec(blocks.codec, self.dim)
        scores = maxsim_batch(query_tokens, *_split(codec, blocks))
        scores[~blocks.found] = np.nan
        return scores

    def token_stats(self) -> dict[str, object]:
        """``token_codec``, ``tokens`` and ``token_bytes`` (empty without a store)."""
        with self._lock.read():
            if self.tokens is None:
                return {}
            return {
                "token_codec": self.config.tokens.codec,
                "tokens": self.tokens.n_tokens,
                "token_bytes": self.tokens.nbytes,
                "token_rows": self.tokens.n_rows,
            }

    def _store(self) -> tuple[TokenStore, TokenCodec]:
        codec = self.token_codec
        if self.tokens is None or codec is None:
            raise InputError(
                f"shard {self.shard_id} stores no token vectors; late-interaction reranking "
                "needs a collection built with --token-vectors"
            )
        return self.tokens, codec

    def _live_row(self, chunk_id: str) -> int | None:
        doc_id = chunk_id.rpartition("#")[0]
        for row in self.rows.doc_rows.get(doc_id, ()):
            if self.rows.chunk_id(row) == chunk_id:
                return row
        return None


def _split(
    codec: TokenCodec, blocks: TokenBlocks
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32] | None]:
    """``(docs, offsets, scale)`` for :func:`~ragfleet.index.maxsim.maxsim_batch`."""
    values, scale = codec.split(blocks.codes)
    return values, blocks.offsets, scale
