"""Late interaction over a collection's stored token vectors: ingest and scoring.

Ingest (:func:`embed_with_tokens`): one encoder pass per batch yields each chunk's pooled
vector and its token states; the states lose ``[CLS]``/``[SEP]``, are L2-normalised and
packed by the collection's :class:`~ragfleet.index.tokens_codec.TokenCodec`, and travel
with the chunk's record through the log into the shard.

Scoring (:class:`LateInteraction`, mixed into Collection and Fleet): the query's token
vectors come from the search's own encoder pass (:class:`~ragfleet.embed.token_capture.
TokenCapture`); the candidates are grouped by the shard that holds them, and each shard
either scores them itself and returns one float per chunk (``via="scores"``: a few bytes
back per candidate) or returns their packed tokens for the coordinator to score
(``via="blocks"``: ``B`` bytes per token back, no work on the shard). Both give the same
MaxSim ``S(Q, D) = Σ_i max_j q_i · d_j`` (Khattab & Zaharia 2020) over the same decoded
vectors, so the reranked order does not depend on the shards or the route.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from ragfleet.embed.bulk import plan_batches
from ragfleet.embed.token_capture import TokenCapture, TokenEncoder, maxsim_states
from ragfleet.errors import ConfigError, InputError
from ragfleet.index.maxsim import maxsim_batch
from ragfleet.index.tokens_codec import Codes, TokenCodec
from ragfleet.index.tokens_pool import pool_tokens
from ragfleet.types import Hit

if TYPE_CHECKING:
    from ragfleet.config import CollectionConfig
    from ragfleet.embed.base import Encoder

Via = Literal["scores", "blocks"]
VIAS: tuple[Via, ...] = ("scores", "blocks")


def codec_of(config: CollectionConfig, dim: int) -> TokenCodec | None:
    """The collection's token codec, ``None`` when it stores no token vectors."""
    return TokenCodec(config.tokens.codec, dim) if config.tokens.enabled else None


def embed_with_tokens(
    encoder: Encoder, texts: Sequence[str], batch_tokens: int, codec: TokenCodec, pool: int = 1
) -> tuple[npt.NDArray[np.float32], list[Codes]]:
    """Pooled vectors ``[n, d]`` and packed token vectors per text, from one pass per
    token-budgeted batch (:func:`~ragfleet.embed.bulk.plan_batches`); with ``pool > 1``
    each text's tokens are merged into ``⌈T / pool⌉`` cluster means first
    (:func:`~ragfleet.index.tokens_pool.pool_tokens`)."""
    if not isinstance(encoder, TokenEncoder):
        raise ConfigError(
            f"encoder {encoder.name!r} cannot return token vectors; a collection with token "
            "vectors needs 'minilm-int8'"
        )
    texts = list(texts)
    vectors = np.empty((len(texts), encoder.dim), dtype=np.float32)
    packed: list[Codes] = [np.zeros((0, codec.bytes_per_token), np.uint8)] * len(texts)
    cap = encoder.contract.max_seq_length
    lengths = [min(c, cap) for c in encoder.tokenizer.count(texts)]
    for idx in plan_batches(lengths, batch_tokens):
        vecs, states = encoder.encode_with_tokens([texts[i] for i in idx], kind="document")
        vectors[idx] = vecs
        for i, s in zip(idx.tolist(), states, strict=True):
            packed[i] = codec.encode(pool_tokens(maxsim_states(s), pool))
    return vectors, packed


def query_encoder(encoder: Encoder, config: CollectionConfig) -> Encoder:
    """The encoder a collection's searcher uses: a :class:`TokenCapture` when it stores
    token vectors (so the rerank reuses the search's pass), else ``encoder`` itself."""
    if config.tokens.enabled and isinstance(encoder, TokenEncoder):
        return TokenCapture(encoder)
    return encoder


class LateInteraction:
    """MaxSim scoring of hits over the shards' stored token vectors."""

    config: CollectionConfig
    encoder: Encoder
    searcher: Any
    shards: Sequence[Any]

    @property
    def has_token_vectors(self) -> bool:
        return bool(self.config.tokens.enabled)

    def token_vector_stats(self, shards: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        """Bytes per token and per chunk of the stored token vectors (``ragfleet stats``),
        from the shards' stats; ``None`` without them."""
        if not self.config.tokens.enabled:
            return None
        tokens = sum(int(s.get("tokens", 0)) for s in shards)
        nbytes = sum(int(s.get("token_bytes", 0)) for s in shards)
        rows = sum(int(s.get("token_rows", 0)) for s in shards)
        return {
            "codec": self.config.tokens.codec,
            "pool": self.config.tokens.pool,
            "tokens": tokens,
            "bytes": nbytes,
            "bytes_per_token": nbytes / tokens if tokens else 0.0,
            "bytes_per_chunk": nbytes / rows if rows else 0.0,
            "tokens_per_chunk": tokens / rows if rows else 0.0,
        }

    def query_tokens(self, query: str) -> npt.NDArray[np.float32]:
        """The query's unit token vectors, from its search's encoder pass when it ran."""
        enc = self.searcher.encoder
        while not isinstance(enc, TokenCapture) and getattr(enc, "inner", None) is not None:
            enc = enc.inner  # under a micro-batcher (serve)
        if not isinstance(enc, TokenCapture):
            raise InputError(
                "this collection stores no token vectors; rebuild it with --token-vectors "
                "to rerank by late interaction"
            )
        return enc.query_tokens(query)

    def late_scores(
        self, query: str, hits: Sequence[Hit], via: Via = "scores", missing: float = 0.0
    ) -> npt.NDArray[np.float32]:
        """``S(Q, D)`` for each hit's stored token vectors (``missing`` for a chunk gone
        since its search), fetched from the shards that hold them (see the module docstring)."""
        if via not in VIAS:
            raise ConfigError(f"late scoring via must be one of {VIAS}, got {via!r}")
        q = self.query_tokens(query)
        out = np.zeros(len(hits), dtype=np.float32)
        by_shard: dict[int, list[int]] = {}
        for i, h in enumerate(hits):
            by_shard.setdefault(h.shard, []).append(i)
        for shard, idx in sorted(by_shard.items()):
            ids = [hits[i].chunk_id for i in idx]
            if via == "scores":
                scores = np.asarray(self.shards[shard].late_scores(q, ids), dtype=np.float32)
            else:
                blocks = self.shards[shard].token_blocks(ids)
                codec = TokenCodec(blocks.codec, self.encoder.dim)
                values, scale = codec.split(blocks.codes)
                scores = maxsim_batch(q, values, blocks.offsets, scale)
                scores[~blocks.found] = np.nan
            out[idx] = np.where(np.isnan(scores), np.float32(missing), scores)
        return out
