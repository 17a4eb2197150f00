"""Late-interaction reranking by MaxSim over token vectors stored at ingest.

ColBERT (Khattab & Zaharia, SIGIR 2020) scores a passage ``D`` for a query ``Q`` by

    S(Q, D) = Σ_{i ∈ Q} max_{j ∈ D} q_i · d_j

over unit-norm token vectors. :class:`~ragfleet.rerank.maxsim.MaxSimReranker` re-encodes
every candidate at query time (seconds per query); here the candidates' token vectors were
stored, packed, when the collection was built (``ragfleet ingest --token-vectors``), and
the query's come from the search's own encoder pass, so a rerank is one matrix product per
shard: milliseconds (``benchmarks/late_scifact.py``). As in ColBERTv2 (Santhanam et al.,
NAACL 2022) the stored vectors are compressed; the codec is the collection's
(:mod:`ragfleet.index.tokens_codec`).

:meth:`LateReranker.score` takes texts like every reranker (their token vectors are
computed and packed with the same codec, so the scores equal the stored path's);
:meth:`LateReranker.score_hits` reads the stored vectors of hits from the shards that hold
them, which is what :meth:`rerank` and the pipeline use. The order it returns blends the MaxSim
scores with the first-stage order (:meth:`LateReranker.blend`,
:mod:`ragfleet.rerank.interpolate`: ``first_stage_weight`` 0.4 by default, 0 for MaxSim alone):
on SciFact test nDCG@10 0.7315 against MaxSim's 0.7286, with the weight chosen on tune splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from ragfleet.errors import ConfigError
from ragfleet.rerank.base import RerankConfig, Scores, check_request, reorder
from ragfleet.rerank.interpolate import FIRST_STAGE_WEIGHT, check_weight, interpolate
from ragfleet.types import Hit

Via = Literal["scores", "blocks"]
#: Candidates re-scored by default: MaxSim over stored vectors is cheap enough for 50.
DEFAULT_CONFIG = RerankConfig(candidates=50, batch_size=64)


@runtime_checkable
class LateScorer(Protocol):
    """A retriever that scores its hits by MaxSim over stored token vectors (Collection,
    Fleet: :class:`~ragfleet.collection.late.LateInteraction`)."""

    @property
    def has_token_vectors(self) -> bool: ...

    def late_scores(
        self, query: str, hits: Sequence[Hit], via: Via = "scores", missing: float = 0.0
    ) -> Scores: ...


class LateReranker:
    """MaxSim over stored token vectors (see the module docstring).

    Args:
        retriever: the collection (or fleet) whose hits are reranked; it must store token
            vectors. ``None``: only :meth:`score` over texts is available.
        config: candidate budget (default 50) and batch size.
        via: ``"scores"`` (each shard scores its candidates and returns a float each) or
            ``"blocks"`` (shards return packed token blocks, scored here).
        encoder: for :meth:`score` over texts; default the retriever's, else ``minilm-int8``.
        codec: for :meth:`score` over texts; default the retriever's codec, else ``int8``.
        first_stage_weight: ``w`` of :mod:`ragfleet.rerank.interpolate` in [0, 1], how much
            of the incoming order the reranked order keeps; 0: MaxSim alone.
    """

    name = "late"

    def __init__(
        self,
        retriever: Any | None = None,
        config: RerankConfig | None = None,
        *,
        via: Via = "scores",
        encoder: Any | None = None,
        codec: str | None = None,
        first_stage_weight: float = FIRST_STAGE_WEIGHT,
    ) -> None:
        if retriever is not None and not (
            isinstance(retriever, LateScorer) and retriever.has_token_vectors
        ):
            raise ConfigError(
                "the late reranker needs a collection that stores token vectors: build it "
                "with `ragfleet ingest … --token-vectors`"
            )
        if via not in ("scores", "blocks"):
            raise ConfigError(f"late reranker via must be 'scores' or 'blocks', got {via!r}")
        self.retriever = retriever
        self.config = config or DEFAULT_CONFIG
        self.via: Via = via
        self.first_stage_weight = check_weight(first_stage_weight)
        self._encoder = encoder
        cfg = getattr(retriever, "config", None)
        self._codec_name = codec or (cfg.tokens.codec if cfg is not None else "int8")
        self._pool = int(cfg.tokens.pool) if cfg is not None else 1

    def _text_encoder(self) -> Any:
        if self._encoder is None:
            enc = getattr(self.retriever, "encoder", None)
            if enc is None:
                from ragfleet.embed.registry import load_encoder

                enc = cast(Any, load_encoder("minilm-int8"))
            self._encoder = enc
        return self._encoder

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        """``S(Q, D)`` for each text, its token vectors pooled and packed as the
        collection's are first."""
        from ragfleet.collection.late import embed_with_tokens
        from ragfleet.embed.token_capture import maxsim_states
        from ragfleet.index.maxsim import maxsim_batch
        from ragfleet.index.tokens_codec import TokenCodec

        enc = self._text_encoder()
        if not texts:
            return np.zeros(0, dtype=np.float32)
        _, states = enc.encode_with_tokens([query], kind="query")
        q = maxsim_states(states[0])
        codec = TokenCodec(self._codec_name, enc.dim)
        _, packed = embed_with_tokens(enc, list(texts), 1 << 14, codec, self._pool)
        offsets = np.cumsum([0, *(len(p) for p in packed)], dtype=np.int64)
        return maxsim_batch(q, codec.decode(np.concatenate(packed)), offsets)

    def score_hits(self, query: str, hits: Sequence[Hit]) -> Scores:
        """``S(Q, D)`` for each hit over its stored token vectors (``NaN`` for a chunk
        deleted since the search: :meth:`blend` ranks it last); :meth:`score` over their
        texts without a retriever."""
        if self.retriever is None:
            from ragfleet.rerank.base import passage_text

            return self.score(query, [passage_text(h) for h in hits])
        out: npt.NDArray[np.float32] = self.retriever.late_scores(
            query, hits, via=self.via, missing=float("nan")
        )
        return out

    def blend(self, scores: Scores, budget: int) -> Scores:
        """The scores the head is reordered by: its MaxSim ``scores`` (first-stage order)
        interpolated with that order by ``first_stage_weight``, the rank term over the
        ``budget`` of candidates the rerank was planned for."""
        return interpolate(scores, self.first_stage_weight, budget)

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        """The best ``top_n`` after re-scoring the first ``config.candidates`` hits."""
        check_request(query, top_n)
        head = list(hits[: self.config.candidates])
        if not head:
            return []
        raw = self.score_hits(query, head)
        final = self.blend(raw, self.config.candidates)
        return reorder(head, final, list(hits[len(head) :]), top_n, raw={self.name: raw})
