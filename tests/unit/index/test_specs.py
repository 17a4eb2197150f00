"""Dense spec grammar, canonical form, nlist rule, training sizes and FAISS factory strings."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.errors import ConfigError, UnknownSpecError
from ragfleet.index.specs import GRAMMAR, DenseSpec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flat", DenseSpec("flat")),
        ("FLAT", DenseSpec("flat")),
        ("hnsw", DenseSpec("hnsw", hnsw_m=32)),
        ("hnsw16", DenseSpec("hnsw", hnsw_m=16)),
        ("ivf", DenseSpec("ivf")),
        ("ivf1024", DenseSpec("ivf", nlist=1024)),
        ("ivf1024,flat", DenseSpec("ivf", nlist=1024)),
        ("ivf1024,pq48", DenseSpec("ivfpq", nlist=1024, pq_m=48)),
        (" IVF1024 , PQ48 ", DenseSpec("ivfpq", nlist=1024, pq_m=48)),
        ("ivf,pq16x4", DenseSpec("ivfpq", pq_m=16, nbits=4)),
        ("ivfpq48", DenseSpec("ivfpq", pq_m=48)),
        ("ivfpq8x6", DenseSpec("ivfpq", pq_m=8, nbits=6)),
        ("ivfsq8", DenseSpec("ivfsq8")),
        ("ivf256,sq8", DenseSpec("ivfsq8", nlist=256)),
    ],
)
def test_parse_grammar(text: str, expected: DenseSpec) -> None:
    assert DenseSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["", "hnswx", "ivf-3", "pq48", "ivf,pq", "lsh", "ivf64,sq4"])
def test_unknown_spec_lists_the_grammar(text: str) -> None:
    with pytest.raises(UnknownSpecError) as info:
        DenseSpec.parse(text)
    assert GRAMMAR in str(info.value) and repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["hnsw1", "hnsw1000", "ivf0", "ivfpq0", "ivfpq8x0", "ivfpq8x17"])
def test_out_of_range_numbers_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        DenseSpec.parse(text)


specs = st.one_of(
    st.just(DenseSpec("flat")),
    st.builds(lambda m: DenseSpec("hnsw", hnsw_m=m), st.integers(2, 512)),
    st.builds(lambda n: DenseSpec("ivf", nlist=n), st.none() | st.integers(1, 1 << 20)),
    st.builds(lambda n: DenseSpec("ivfsq8", nlist=n), st.none() | st.integers(1, 1 << 20)),
    st.builds(
        lambda n, m, b: DenseSpec("ivfpq", nlist=n, pq_m=m, nbits=b),
        st.none() | st.integers(1, 1 << 20),
        st.integers(1, 128),
        st.integers(1, 16),
    ),
)


@given(specs)
def test_canonical_round_trips(spec: DenseSpec) -> None:
    assert DenseSpec.parse(spec.canonical) == spec


@given(st.integers(0, 10**9))
def test_auto_nlist_is_clamped_four_sqrt_n(n: int) -> None:
    assert DenseSpec("ivf").resolve_nlist(n) == min(max(round(4 * math.sqrt(n)), 16), 65536)
    assert DenseSpec("ivf", nlist=77).resolve_nlist(n) == 77


def test_training_sizes() -> None:
    assert DenseSpec("flat").min_train_size(10) == 0
    assert DenseSpec("hnsw", hnsw_m=32).recommended_train_size(10) == 0
    assert DenseSpec("ivf", nlist=100).min_train_size(1) == 100
    assert DenseSpec("ivf", nlist=100).recommended_train_size(1) == 39 * 100
    assert DenseSpec("ivfpq", nlist=64, pq_m=8).min_train_size(1) == 2**8
    assert DenseSpec("ivfpq", nlist=1024, pq_m=8, nbits=4).min_train_size(1) == 1024
    n = 10_000
    assert DenseSpec("ivfsq8").min_train_size(n) == round(4 * math.sqrt(n))
    assert DenseSpec("ivf").needs_training and not DenseSpec("flat").needs_training


@pytest.mark.parametrize(
    ("text", "factory"),
    [
        ("flat", "Flat"),
        ("hnsw16", "HNSW16"),
        ("ivf64", "IVF64,Flat"),
        ("ivf", "IVF400,Flat"),  # 4 * sqrt(10_000)
        ("ivf64,pq8", "IVF64,PQ8x8np"),
        ("ivfsq8", "IVF400,SQ8"),
    ],
)
def test_factory_strings_build_in_faiss(text: str, factory: str) -> None:
    assert DenseSpec.parse(text).to_factory_string(32, 10_000) == factory
    faiss = pytest.importorskip("faiss")
    assert faiss.index_factory(32, factory).d == 32


def test_pq_must_divide_d() -> None:
    with pytest.raises(ConfigError, match=r"divide d=30.*\[.*15"):
        DenseSpec.parse("ivfpq8").to_factory_string(30, 10_000)
    with pytest.raises(ConfigError, match="dimension"):
        DenseSpec.parse("flat").to_factory_string(0, 10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "lsh"},
        {"kind": "hnsw"},
        {"kind": "flat", "hnsw_m": 32},
        {"kind": "ivfpq", "nlist": 64},
        {"kind": "ivf", "pq_m": 8},
        {"kind": "flat", "nlist": 64},
    ],
)
def test_inconsistent_direct_construction_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        DenseSpec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["flat", "hnsw16", "ivf8", "ivf8,pq4", "ivf8,pq4x6", "ivf8,sq8"])
@pytest.mark.parametrize("metric", ["METRIC_L2", "METRIC_INNER_PRODUCT"])
def test_of_faiss_index_inverts_the_factory(text: str, metric: str) -> None:
    faiss = pytest.importorskip("faiss")
    spec = DenseSpec.parse(text)
    index = faiss.index_factory(16, spec.to_factory_string(16, 1000), getattr(faiss, metric))
    assert DenseSpec.of_faiss_index(faiss, index) == spec


@pytest.mark.parametrize("factory", ["HNSW16,SQ8", "IVF8,SQ4", "LSH", "PQ4"])
def test_of_faiss_index_rejects_what_the_grammar_cannot_say(factory: str) -> None:
    faiss = pytest.importorskip("faiss")
    with pytest.raises(ConfigError, match="unsupported FAISS index"):
        DenseSpec.of_faiss_index(faiss, faiss.index_factory(16, factory))
