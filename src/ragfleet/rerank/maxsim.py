"""Late-interaction MaxSim reranking over the bundled encoder's token states (no training).

ColBERT (Khattab & Zaharia, SIGIR 2020, "ColBERT: Efficient and Effective Passage Search
via Contextualized Late Interaction over BERT") scores a passage ``D`` for a query ``Q`` by
matching every query token with its most similar passage token:

    S(Q, D) = Σ_{q ∈ Q} max_{d ∈ D} cos(q, d)

Here ``q`` and ``d`` are the unpooled last-layer token states of all-MiniLM-L6-v2 (the
collection's own encoder, ``Encoder.token_embeddings``), each L2-normalised; ``[CLS]`` and
``[SEP]`` are dropped. The sum runs over query tokens, so scores compare passages for one
query only. The model was trained for mean pooling, not for MaxSim: measure before use
(``benchmarks/rerank_scifact.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from ragfleet.embed.token_capture import maxsim_states
from ragfleet.errors import ConfigError
from ragfleet.rerank.base import RerankConfig, Scores, rerank_with
from ragfleet.types import EncodeKind, Hit

Matrix = npt.NDArray[np.float32]


class TokenEncoder(Protocol):
    """An encoder that exposes per-token states (``OnnxMiniLMEncoder`` does)."""

    def token_embeddings(
        self, texts: Sequence[str], kind: EncodeKind = "document"
    ) -> list[Matrix]: ...


def normalize_tokens(states: Matrix) -> Matrix:
    """Drop the first and last token ([CLS], [SEP]) and L2-normalise each row
    (:func:`ragfleet.embed.token_capture.maxsim_states`)."""
    return maxsim_states(states)


def maxsim(q: Matrix, d: Matrix) -> float:
    """``Σ_i max_j q_i · d_j`` for row-normalised token matrices ``q`` ``[m, dim]`` and
    ``d`` ``[n, dim]``; 0 when either is empty."""
    if not len(q) or not len(d):
        return 0.0
    return float((q @ d.T).max(axis=1).sum())


class MaxSimReranker:
    """ColBERT-style MaxSim over an encoder's token states (see the module docstring).

    Args:
        encoder: anything with ``token_embeddings``; default the registry's
            ``minilm-int8`` (loaded once per process).
        config: the candidate budget and batch size.
    """

    name = "maxsim"

    def __init__(self, encoder: Any | None = None, config: RerankConfig | None = None) -> None:
        if encoder is None:
            from ragfleet.embed.registry import load_encoder

            encoder = cast(Any, load_encoder("minilm-int8"))
        if not callable(getattr(encoder, "token_embeddings", None)):
            raise ConfigError(
                f"encoder {type(encoder).__name__} has no token_embeddings(); MaxSim needs "
                "token states: use the 'minilm-int8' encoder"
            )
        self.encoder: TokenEncoder = encoder  # checked above: has token_embeddings
        self.config = config or RerankConfig()

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        """``S(Q, D)`` for each text, passages encoded ``config.batch_size`` at a time."""
        q = normalize_tokens(self.encoder.token_embeddings([query], kind="query")[0])
        out = np.empty(len(texts), dtype=np.float32)
        step = self.config.batch_size
        for start in range(0, len(texts), step):
            batch = self.encoder.token_embeddings(list(texts[start : start + step]))
            for i, states in enumerate(batch):
                out[start + i] = maxsim(q, normalize_tokens(states))
        return out

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        """See :func:`ragfleet.rerank.base.rerank_with`."""
        return rerank_with(self, query, hits, top_n)
