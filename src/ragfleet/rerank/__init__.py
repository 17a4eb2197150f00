"""Rerank: re-score the top candidates of a search with a more expensive model.

``LateReranker`` scores by MaxSim over token vectors stored at ingest (milliseconds);
``MaxSimReranker`` needs no training (ColBERT-style late interaction over the bundled
encoder); ``CrossEncoderReranker`` loads a local cross-encoder folder, such as one written by
``ragfleet reranker train`` (:mod:`ragfleet.rerank.train`). :func:`load_reranker` picks one
by name or path, as the CLI does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragfleet.errors import ConfigError
from ragfleet.rerank.base import RerankConfig, Reranker, reorder, rerank_with

__all__ = ["RerankConfig", "Reranker", "load_reranker", "reorder", "rerank_with"]


def load_reranker(
    spec: str,
    config: RerankConfig | None = None,
    retriever: Any | None = None,
    *,
    late_weight: float | None = None,
) -> Reranker:
    """``"late"`` → :class:`~ragfleet.rerank.late.LateReranker` over ``retriever``'s stored
    token vectors, blending its MaxSim with the incoming order by ``late_weight`` (default
    :data:`~ragfleet.rerank.interpolate.FIRST_STAGE_WEIGHT`; 0: MaxSim alone); ``"maxsim"`` →
    :class:`~ragfleet.rerank.maxsim.MaxSimReranker`; any other value is a cross-encoder
    directory → :class:`~ragfleet.rerank.cross_encoder.CrossEncoderReranker`."""
    if late_weight is not None and spec != "late":
        raise ConfigError(
            f"the late weight applies to the late reranker only, not {spec!r}: drop it "
            "or use --reranker late"
        )
    if spec == "late":
        from ragfleet.rerank.late import LateReranker

        if retriever is None:
            raise ConfigError("the late reranker needs the collection whose hits it reranks")
        from ragfleet.rerank.interpolate import FIRST_STAGE_WEIGHT

        late_config = config or RerankConfig(candidates=50)
        weight = FIRST_STAGE_WEIGHT if late_weight is None else late_weight
        cfg = RerankConfig(late_config.candidates, batch_size=64)
        return LateReranker(retriever, cfg, first_stage_weight=weight)
    if spec == "maxsim":
        from ragfleet.rerank.maxsim import MaxSimReranker

        return MaxSimReranker(config=config)
    from ragfleet.rerank.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(Path(spec), config=config)
