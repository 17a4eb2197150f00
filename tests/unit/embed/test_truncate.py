"""TruncatedEncoder: the first ``dim`` coordinates, renormalised, under its own contract."""

from __future__ import annotations

import numpy as np
import pytest

from ragfleet.config import EncoderConfig
from ragfleet.embed.bulk import embed_bulk
from ragfleet.embed.registry import encoder_for, load_encoder
from ragfleet.embed.truncate import TruncatedEncoder, truncated
from ragfleet.errors import ConfigError

TEXTS = ["FAISS searches vectors.", "BM25 ranks documents by terms.", "HNSW is a graph."]


@pytest.mark.model
def test_truncation_is_the_prefix_renormalised() -> None:
    base = load_encoder("minilm-int8")
    full = base.encode(TEXTS, kind="query")
    cut = TruncatedEncoder(base, 96)
    got = cut.encode(TEXTS, kind="query")
    want = full[:, :96] / np.linalg.norm(full[:, :96], axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert got.shape == (3, 96) and got.dtype == np.float32 and got.flags.c_contiguous
    assert cut.dim == 96 and cut.contract.truncate_dim == 96 and cut.contract.vector_dim == 96
    assert cut.contract.fingerprint() != base.contract.fingerprint()
    assert cut.name == base.name and cut.tokenizer is base.tokenizer
    np.testing.assert_allclose(embed_bulk(cut, TEXTS, batch_tokens=256), cut.encode(TEXTS),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


@pytest.mark.model
def test_encoder_for_reads_the_config() -> None:
    base = load_encoder("minilm-int8")
    assert encoder_for(EncoderConfig()) is base
    cut = encoder_for(EncoderConfig(truncate_dim=128))
    assert isinstance(cut, TruncatedEncoder) and cut.dim == 128
    assert truncated(base, None) is base


@pytest.mark.model
@pytest.mark.parametrize("dim", [0, 384, 500, True])
def test_bad_widths_are_config_errors(dim: int) -> None:
    with pytest.raises(ConfigError, match="truncate_dim"):
        TruncatedEncoder(load_encoder("minilm-int8"), dim)


@pytest.mark.parametrize("dim", [0, -1, True, 2.5])
def test_encoder_config_checks_truncate_dim(dim: object) -> None:
    with pytest.raises(ConfigError, match="truncate_dim"):
        EncoderConfig(truncate_dim=dim)  # type: ignore[arg-type]
