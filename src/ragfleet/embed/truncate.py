"""Truncated embeddings: keep the first ``dim`` coordinates of another encoder's vectors.

``t(x) = x[:dim] / ||x[:dim]||₂`` (renormalised when the model's vectors are unit
vectors), the Matryoshka truncation of Kusupati et al., "Matryoshka Representation
Learning" (NeurIPS 2022): models trained for it keep most of their quality at a fraction
of the width; others (all-MiniLM-L6-v2 among them) lose more — measure before using it.
The truncation is part of the embedding contract (``truncate_dim``), so a collection built
with it refuses an untruncated query encoder, and the other way round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ragfleet.embed.base import Encoder, Vectors, l2_normalize
from ragfleet.errors import ConfigError
from ragfleet.types import EncodeKind

if TYPE_CHECKING:
    from ragfleet.embed.contract import EmbeddingContract
    from ragfleet.ingest.tokenize import Tokenizer


class TruncatedEncoder:
    """``base``'s vectors cut to their first ``dim`` coordinates (see the module docstring)."""

    def __init__(self, base: Encoder, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim < base.dim:
            raise ConfigError(f"truncate_dim must be an int in [1, {base.dim}), got {dim!r}")
        self.base = base
        self.name = base.name
        self._dim = dim
        self._contract = dataclasses.replace(base.contract, truncate_dim=dim)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def contract(self) -> EmbeddingContract:
        return self._contract

    @property
    def tokenizer(self) -> Tokenizer:
        return self.base.tokenizer

    def encode(self, texts: Sequence[str], kind: EncodeKind = "document") -> Vectors:
        return self.finish(self.base.encode(texts, kind=kind))

    def finish(self, x: Vectors) -> Vectors:
        """``base``'s vectors ``x`` truncated (and renormalised if the model normalises)."""
        cut = np.ascontiguousarray(x[:, : self._dim], dtype=np.float32)
        return l2_normalize(cut) if self.base.contract.normalize else cut


def truncated(base: Encoder, dim: int | None) -> Encoder:
    """``base`` itself when ``dim`` is None, else :class:`TruncatedEncoder` over it."""
    return base if dim is None else TruncatedEncoder(base, dim)
