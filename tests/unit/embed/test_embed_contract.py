"""EmbeddingContract: fingerprint, JSON round trip, probes and verify()."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.embed.base import Encoder
from ragfleet.embed.contract import MODEL_FIELDS, PROBE_TEXTS, EmbeddingContract
from ragfleet.embed.registry import load_encoder
from ragfleet.errors import ConfigError, EmbeddingContractError

BASE = EmbeddingContract(model_id="m", weights_sha256="ab" * 32, dim=3, max_seq_length=16)


@pytest.fixture(scope="session")
def onnx_encoder() -> Encoder:
    return load_encoder("minilm-int8")


@pytest.fixture(scope="session")
def torch_encoder() -> Encoder:
    return load_encoder("minilm")


@pytest.fixture(scope="session")
def pinned(onnx_encoder: Encoder) -> EmbeddingContract:
    """A collection's contract: the int8 encoder's, a chunker, and probes."""
    contract = dataclasses.replace(onnx_encoder.contract, chunker="sentence:256:32")
    return contract.with_probes(onnx_encoder)


def _sha(fields: dict[str, Any]) -> str:
    canon = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def test_fingerprint_is_sha256_of_canonical_json_without_probes() -> None:
    """Without probes; ``truncate_dim``, ``precision`` and ``token_vectors`` (added later)
    only when they differ from their defaults, so that older collections keep their
    fingerprint."""
    fields = {f.name: getattr(BASE, f.name) for f in dataclasses.fields(BASE)}
    for later in ("probes", "truncate_dim", "precision", "token_vectors"):
        del fields[later]
    assert BASE.fingerprint() == _sha(fields)
    with_probe = dataclasses.replace(BASE, probes=(("x", (1.0, 0.0, 0.0)),))
    assert with_probe.fingerprint() == BASE.fingerprint()
    cut = dataclasses.replace(BASE, truncate_dim=2, precision="fp16")
    assert cut.fingerprint() == _sha({**fields, "truncate_dim": 2, "precision": "fp16"})
    late = dataclasses.replace(BASE, token_vectors="int8")
    assert late.fingerprint() == _sha({**fields, "token_vectors": "int8"})
    assert EmbeddingContract.from_dict(late.to_dict()) == late


def test_fingerprint_of_a_contract_written_before_truncation_and_precision() -> None:
    """A collection.json contract of the previous format (no truncate_dim, no precision)
    reads back with its stored fingerprint."""
    old = {k: v for k, v in BASE.to_dict().items() if k not in ("truncate_dim", "precision")}
    assert old["fingerprint"] == BASE.fingerprint()
    assert EmbeddingContract.from_dict(old) == BASE


def test_truncation_and_precision_are_checked() -> None:
    with pytest.raises(ConfigError, match="truncate_dim must be in"):
        dataclasses.replace(BASE, truncate_dim=3)
    with pytest.raises(ConfigError, match="precision must be one of"):
        dataclasses.replace(BASE, precision="int8")
    with pytest.raises(ConfigError, match="vectors have 2"):  # probes are truncated vectors
        dataclasses.replace(BASE, truncate_dim=2, probes=(("x", (1.0, 0.0, 0.0)),))
    assert dataclasses.replace(BASE, truncate_dim=2).vector_dim == 2 and BASE.vector_dim == 3


@pytest.mark.parametrize(
    "change",
    [
        {"model_id": "other"},
        {"weights_sha256": "cd" * 32},
        {"dim": 4},
        {"max_seq_length": 8},
        {"pooling": "cls"},
        {"normalize": False},
        {"query_prefix": "query: "},
        {"document_prefix": "passage: "},
        {"chunker": "window:128:16"},
        {"truncate_dim": 2},
        {"precision": "fp16"},
    ],
)
def test_every_field_but_probes_changes_the_fingerprint(change: dict[str, Any]) -> None:
    assert dataclasses.replace(BASE, **change).fingerprint() != BASE.fingerprint()


vectors = st.lists(st.floats(-1, 1, allow_nan=False), min_size=3, max_size=3).map(
    lambda xs: tuple(round(x, 6) for x in xs)
)


@given(st.lists(st.tuples(st.text(max_size=20), vectors), max_size=4), st.text(max_size=10))
def test_to_dict_from_dict_round_trip(
    probes: list[tuple[str, tuple[float, ...]]], chunker: str
) -> None:
    contract = dataclasses.replace(BASE, probes=tuple(probes), chunker=chunker)
    d = json.loads(json.dumps(contract.to_dict()))
    assert EmbeddingContract.from_dict(d) == contract
    assert d["fingerprint"] == contract.fingerprint()


def test_to_dict_rounds_probe_vectors_to_6_decimals() -> None:
    contract = dataclasses.replace(BASE, probes=(("x", (0.123456789, 1 / 3, -2 / 3)),))
    assert contract.to_dict()["probes"] == [["x", [0.123457, 0.333333, -0.666667]]]


def test_from_dict_rejects_hand_edits_and_unknown_fields() -> None:
    d = BASE.to_dict()
    with pytest.raises(EmbeddingContractError, match="edited by hand"):
        EmbeddingContract.from_dict({**d, "dim": 4, "probes": []})
    with pytest.raises(EmbeddingContractError, match="invalid embedding contract"):
        EmbeddingContract.from_dict({**d, "colour": "blue"})
    with pytest.raises(EmbeddingContractError, match="invalid embedding contract"):
        EmbeddingContract.from_dict({k: v for k, v in d.items() if k != "model_id"})


def test_invalid_fields_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="dim"):
        dataclasses.replace(BASE, dim=0)
    with pytest.raises(ConfigError, match="pooling"):
        dataclasses.replace(BASE, pooling="sum")
    with pytest.raises(ConfigError, match="2 values"):
        dataclasses.replace(BASE, probes=(("x", (1.0, 2.0)),))


@pytest.mark.model
def test_with_probes_records_each_probe_text(
    pinned: EmbeddingContract, onnx_encoder: Encoder
) -> None:
    assert [t for t, _ in pinned.probes] == list(PROBE_TEXTS)
    for text, vec in pinned.probes:
        expected = onnx_encoder.encode([text])[0]
        np.testing.assert_allclose(vec, expected, atol=5e-7)


@pytest.mark.model
def test_verify_accepts_the_same_encoder_whatever_the_chunker(
    pinned: EmbeddingContract, onnx_encoder: Encoder
) -> None:
    pinned.verify(onnx_encoder)
    EmbeddingContract.from_dict(json.loads(json.dumps(pinned.to_dict()))).verify(onnx_encoder)


@pytest.mark.model
def test_verify_refuses_another_model_naming_both_fingerprints(
    pinned: EmbeddingContract, torch_encoder: Encoder
) -> None:
    theirs = dataclasses.replace(torch_encoder.contract, chunker=pinned.chunker)
    with pytest.raises(EmbeddingContractError) as info:
        pinned.verify(torch_encoder)
    message = str(info.value)
    assert pinned.fingerprint() in message
    assert theirs.fingerprint() in message
    assert "model_id" in message and "weights_sha256" in message
    assert "dim" not in message.split("differing fields")[1].split(".")[0]
    with pytest.raises(EmbeddingContractError):
        pinned.with_probes(torch_encoder)


@pytest.mark.model
def test_verify_refuses_tampered_probe_vectors(
    pinned: EmbeddingContract, onnx_encoder: Encoder
) -> None:
    (text, vec), *rest = pinned.probes
    flipped = tuple(-x if i % 2 else x for i, x in enumerate(vec))
    cos = float(np.dot(flipped, vec) / (np.linalg.norm(flipped) * np.linalg.norm(vec)))
    tampered = dataclasses.replace(pinned, probes=((text, flipped), *rest))
    with pytest.raises(EmbeddingContractError) as info:
        tampered.verify(onnx_encoder)
    message = str(info.value)
    assert repr(text) in message
    # the cosine the message reports is the one computed, within float noise across CPUs
    reported = re.search(r"cosine (-?\d+\.\d+) <", message)
    assert reported is not None, message
    assert float(reported.group(1)) == pytest.approx(cos, abs=1e-3)
    assert pinned.fingerprint() in str(info.value)
    tampered.verify(onnx_encoder, min_cosine=-1.0)


@pytest.mark.model
def test_probes_alone_refuse_the_nearest_other_model(
    pinned: EmbeddingContract, onnx_encoder: Encoder, torch_encoder: Encoder
) -> None:
    """The fp32 build of the same network re-encodes the probes at cosine ~0.9995: close,
    but below the threshold, so even a contract whose model fields were forged to match
    is refused by its probes."""
    theirs = dataclasses.replace(torch_encoder.contract, chunker=pinned.chunker)
    forged = dataclasses.replace(pinned, probes=theirs.with_probes(torch_encoder).probes)
    with pytest.raises(EmbeddingContractError, match=r"cosine 0\.999"):
        forged.verify(onnx_encoder)
    pinned.verify(onnx_encoder)  # while the collection's own probes pass


def test_model_fields_are_every_field_but_the_collections_and_probes() -> None:
    names = {f.name for f in dataclasses.fields(EmbeddingContract)}
    assert set(MODEL_FIELDS) == names - {"chunker", "precision", "probes", "token_vectors"}


@pytest.mark.model
def test_a_truncated_collection_refuses_an_untruncated_encoder_and_back(
    onnx_encoder: Encoder,
) -> None:
    """Truncation is a model field: a collection whose vectors are cut to 128 dimensions
    refuses the full encoder (its queries would not be comparable), a full collection
    refuses the truncated one; precision is the collection's and never refuses."""
    from ragfleet.embed.truncate import TruncatedEncoder

    cut = TruncatedEncoder(onnx_encoder, 128)
    pinned = dataclasses.replace(cut.contract, chunker="sentence:256:32", precision="fp16")
    pinned = pinned.with_probes(cut)
    assert all(len(v) == 128 for _, v in pinned.probes)
    pinned.verify(cut)
    with pytest.raises(EmbeddingContractError, match="truncate_dim: 128 != 0"):
        pinned.verify(onnx_encoder)
    full = dataclasses.replace(onnx_encoder.contract, chunker="sentence:256:32").with_probes(
        onnx_encoder
    )
    with pytest.raises(EmbeddingContractError, match="truncate_dim: 0 != 128"):
        full.verify(cut)


@pytest.mark.model
def test_verify_rejects_a_bad_min_cosine(pinned: EmbeddingContract, onnx_encoder: Encoder) -> None:
    with pytest.raises(ConfigError, match="min_cosine"):
        pinned.verify(onnx_encoder, min_cosine=1.5)
