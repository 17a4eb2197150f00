"""Dense spec grammar, canonical form, nlist rule, training sizes and FAISS factory strings."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.errors import ConfigError, UnknownSpecError
from ragfleet.index.specs import GRAMMAR, DenseSpec


def ivf(**kw: object) -> DenseSpec:
    return DenseSpec("ivf", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flat", DenseSpec()),
        ("FLAT", DenseSpec()),
        ("hnsw", DenseSpec("hnsw", hnsw_m=32)),
        ("hnsw16", DenseSpec("hnsw", hnsw_m=16)),
        ("ivf", ivf()),
        ("ivf1024", ivf(nlist=1024)),
        ("ivf1024,flat", ivf(nlist=1024)),
        ("ivf1024,pq48", ivf(codes="pq", nlist=1024, pq_m=48)),
        (" IVF1024 , PQ48 ", ivf(codes="pq", nlist=1024, pq_m=48)),
        ("ivf,pq16x4", ivf(codes="pq", pq_m=16, nbits=4)),
        ("ivfpq48", ivf(codes="pq", pq_m=48)),
        ("ivfpq8x6", ivf(codes="pq", pq_m=8, nbits=6)),
        ("ivfsq8", ivf(codes="sq8")),
        ("ivf256,sq8", ivf(codes="sq8", nlist=256)),
        ("ivf64,sq4", ivf(codes="sq4", nlist=64)),
        ("ivf,sqfp16", ivf(codes="fp16")),
        ("ivf,pq96fs", ivf(codes="pq", pq_m=96, nbits=4, fastscan=True)),
        ("ivf,pq96x4fs+refine", ivf(codes="pq", pq_m=96, nbits=4, fastscan=True, refine="fp32")),
        ("ivf,pq48+refine16", ivf(codes="pq", pq_m=48, refine="fp16")),
        ("opq,ivf,pq48+refine", ivf(codes="pq", pq_m=48, opq=True, refine="fp32")),
        ("opq48,ivf,pq48", ivf(codes="pq", pq_m=48, opq=True)),
        ("sq8", DenseSpec(codes="sq8")),
        ("sq4+refine", DenseSpec(codes="sq4", refine="fp32")),
        ("sqfp16", DenseSpec(codes="fp16")),
        ("binary", DenseSpec(codes="binary", refine="fp32")),
        ("binary+refine16", DenseSpec(codes="binary", refine="fp16")),
        ("hnsw16,sq8", DenseSpec("hnsw", "sq8", hnsw_m=16)),
        ("hnsw32,pq48+refine", DenseSpec("hnsw", "pq", hnsw_m=32, pq_m=48, refine="fp32")),
        ("hnsw32,binary", DenseSpec("hnsw", "binary", hnsw_m=32, refine="fp32")),
        ("rabitq", DenseSpec(codes="rabitq", nbits=1)),
        ("rabitq4+refine", DenseSpec(codes="rabitq", nbits=4, refine="fp32")),
        ("ivf1024,rabitq", ivf(codes="rabitq", nlist=1024, nbits=1)),
        ("ivf,rabitqfs+refine", ivf(codes="rabitq", nbits=1, fastscan=True, refine="fp32")),
        (
            "ivf64,rabitq2fs+refine16",
            ivf(codes="rabitq", nlist=64, nbits=2, fastscan=True, refine="fp16"),
        ),
    ],
)
def test_parse_grammar(text: str, expected: DenseSpec) -> None:
    assert DenseSpec.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "hnswx", "ivf-3", "ivf,pq", "lsh", "flat12", "sq8+foo", "ivf,sq2", "sq8,,"]
)
def test_unknown_spec_lists_the_grammar(text: str) -> None:
    with pytest.raises(UnknownSpecError) as info:
        DenseSpec.parse(text)
    assert GRAMMAR in str(info.value) and repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hnsw1", "M must be"),
        ("hnsw1000", "M must be"),
        ("ivf0", "nlist"),
        ("ivfpq0", "sub-quantizers"),
        ("ivfpq8x0", "nbits"),
        ("ivfpq8x17", "nbits"),
        ("pq48", "ivf or hnsw structure"),
        ("flat+refine", "exact already"),
        ("hnsw32+refine", "exact already"),
        ("ivf,binary", "IndexBinaryIVF cannot filter"),
        ("ivf,pq48x8fs", "4 bits"),
        ("opq,ivf,sq8", "opq rotates for ivf,pq only"),
        ("opq16,ivf,pq48", "must rotate for the pq"),
        ("hnsw32,rabitq", "rabitq codes come flat or in ivf"),
        ("rabitqfs", "fast scan"),
        ("ivf,rabitq0", "rabitq bits"),
        ("ivf,rabitq10", "rabitq bits"),
    ],
)
def test_inconsistent_specs_are_config_errors_saying_why(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DenseSpec.parse(text)


nlists = st.none() | st.integers(1, 1 << 20)
refines = st.sampled_from([None, "fp32", "fp16"])
specs = st.one_of(
    st.just(DenseSpec()),
    st.builds(lambda m: DenseSpec("hnsw", hnsw_m=m), st.integers(2, 512)),
    st.builds(lambda n: ivf(nlist=n), nlists),
    st.builds(
        lambda s, c, m, r: DenseSpec(s, c, hnsw_m=m if s == "hnsw" else None, refine=r),
        st.sampled_from(["flat", "hnsw"]),
        st.sampled_from(["sq8", "sq4", "fp16"]),
        st.integers(2, 512),
        refines,
    ),
    st.builds(
        lambda n, c, r: ivf(codes=c, nlist=n, refine=r),
        nlists,
        st.sampled_from(["sq8", "sq4", "fp16"]),
        refines,
    ),
    st.builds(
        lambda n, m, b, o, r: ivf(codes="pq", nlist=n, pq_m=m, nbits=b, opq=o, refine=r),
        nlists,
        st.integers(1, 128),
        st.integers(1, 16),
        st.booleans(),
        refines,
    ),
    st.builds(
        lambda s, n, b, f, r: DenseSpec(
            s,
            "rabitq",
            nlist=n if s == "ivf" else None,
            nbits=b,
            fastscan=f and s == "ivf",
            refine=r,
        ),
        st.sampled_from(["flat", "ivf"]),
        nlists,
        st.integers(1, 9),
        st.booleans(),
        refines,
    ),
    st.builds(
        lambda n, m: ivf(codes="pq", nlist=n, pq_m=m, nbits=4, fastscan=True),
        nlists,
        st.integers(1, 128),
    ),
    st.builds(
        lambda s, m, r: DenseSpec(s, "binary", hnsw_m=m if s == "hnsw" else None, refine=r),
        st.sampled_from(["flat", "hnsw"]),
        st.integers(2, 512),
        st.sampled_from(["fp32", "fp16"]),
    ),
)


@given(specs)
def test_canonical_round_trips(spec: DenseSpec) -> None:
    assert DenseSpec.parse(spec.canonical) == spec


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("flat", "flat"),
        ("hnsw16", "hnsw"),
        ("ivf1024,pq48+refine", "ivf,pq+refine"),
        ("ivf,pq96fs+refine16", "ivf,pqfs+refine"),
        ("opq,ivf,pq48", "opq,ivf,pq"),
        ("sq8", "sq8"),
        ("binary", "binary+refine"),
        ("hnsw32,binary", "hnsw,binary+refine"),
        ("ivf1024,rabitq2fs+refine", "ivf,rabitqfs+refine"),
        ("rabitq", "rabitq"),
    ],
)
def test_family_drops_the_numbers(text: str, family: str) -> None:
    assert DenseSpec.parse(text).family == family


@given(st.integers(0, 10**9))
def test_auto_nlist_is_clamped_four_sqrt_n(n: int) -> None:
    assert ivf().resolve_nlist(n) == min(max(round(4 * math.sqrt(n)), 16), 65536)
    assert ivf(nlist=77).resolve_nlist(n) == 77


def test_training_sizes() -> None:
    assert DenseSpec().min_train_size(10) == 0
    assert DenseSpec("hnsw", hnsw_m=32).recommended_train_size(10) == 0
    assert ivf(nlist=100).min_train_size(1) == 100
    assert ivf(nlist=100).recommended_train_size(1) == 39 * 100
    assert ivf(codes="pq", nlist=64, pq_m=8).min_train_size(1) == 2**8
    assert ivf(codes="pq", nlist=1024, pq_m=8, nbits=4).min_train_size(1) == 1024
    assert DenseSpec("hnsw", "pq", hnsw_m=16, pq_m=8).min_train_size(1) == 2**8
    n = 10_000
    assert ivf(codes="sq8").min_train_size(n) == round(4 * math.sqrt(n))
    assert DenseSpec(codes="sq8").min_train_size(n) == 1
    assert ivf().needs_training and not DenseSpec().needs_training
    assert DenseSpec.parse("sq4").needs_training and DenseSpec.parse("hnsw32,pq8").needs_training
    assert DenseSpec.parse("rabitq").needs_training
    assert DenseSpec.parse("rabitq").min_train_size(n) == 1
    for text in ("sqfp16", "binary", "hnsw32,binary", "hnsw16,sqfp16"):
        assert not DenseSpec.parse(text).needs_training, text


@pytest.mark.parametrize(
    ("text", "factory"),
    [
        ("flat", "Flat"),
        ("hnsw16", "HNSW16"),
        ("ivf64", "IVF64,Flat"),
        ("ivf", "IVF400,Flat"),  # 4 * sqrt(10_000)
        ("ivf64,pq8", "IVF64,PQ8x8np"),
        ("ivfsq8", "IVF400,SQ8"),
        ("ivf64,sq4+refine", "IVF64,SQ4"),
        ("ivf64,sqfp16", "IVF64,SQfp16"),
        ("ivf64,pq16fs+refine", "IVF64,PQ16x4fs"),
        ("opq,ivf64,pq8", "OPQ8,IVF64,PQ8x8np"),
        ("sq8", "SQ8"),
        ("sq4", "SQ4"),
        ("sqfp16", "SQfp16"),
        ("hnsw16,sq8", "HNSW16,SQ8"),
        ("hnsw16,pq8x4", "HNSW16,PQ8x4"),
        ("rabitq", "RaBitQ"),
        ("rabitq4+refine", "RaBitQ4"),
        ("ivf64,rabitq", "IVF64,RaBitQ"),
        ("ivf64,rabitq2fs+refine", "IVF64,RaBitQfs2"),
    ],
)
def test_factory_strings_build_in_faiss(text: str, factory: str) -> None:
    assert DenseSpec.parse(text).to_factory_string(32, 10_000) == factory
    faiss = pytest.importorskip("faiss")
    assert faiss.index_factory(32, factory).d == 32


def test_pq_must_divide_d_and_binary_has_no_factory_string() -> None:
    with pytest.raises(ConfigError, match=r"divide d=30.*\[.*15"):
        DenseSpec.parse("ivfpq8").to_factory_string(30, 10_000)
    with pytest.raises(ConfigError, match="dimension"):
        DenseSpec.parse("flat").to_factory_string(0, 10)
    with pytest.raises(ConfigError, match="no FAISS factory string"):
        DenseSpec.parse("binary").to_factory_string(32, 10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"structure": "lsh"},
        {"codes": "lsh"},
        {"structure": "hnsw"},
        {"hnsw_m": 32},
        {"structure": "ivf", "codes": "pq"},
        {"structure": "ivf", "pq_m": 8},
        {"nlist": 64},
        {"codes": "binary"},  # binary codes need refine
        {"codes": "sq8", "refine": "fp8"},
        {"structure": "ivf", "codes": "sq8", "fastscan": True},
    ],
)
def test_inconsistent_direct_construction_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        DenseSpec(**kwargs)  # type: ignore[arg-type]
