"""A cross-encoder reranker loaded from a local model directory, offline.

A cross-encoder (Nogueira & Cho 2019, "Passage Re-ranking with BERT") reads the query and
the passage together, ``[CLS] q [SEP] p [SEP]``, and maps the ``[CLS]`` state to one
relevance logit: ``s(q, p) = w·h_[CLS] + b``. Any HuggingFace sequence-classification
directory works (the format sentence-transformers' ``CrossEncoder`` saves, and what
``ragfleet reranker train`` writes): ``config.json``, weights (``model.safetensors`` or
``pytorch_model.bin``) and a tokenizer. With ``num_labels > 1`` the score is the logit of
the last label. Nothing is downloaded: ``HF_HUB_OFFLINE=1`` is set before loading.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragfleet._optional import require
from ragfleet.errors import InputError
from ragfleet.rerank.base import RerankConfig, Scores, rerank_with
from ragfleet.types import Hit

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


def check_model_dir(model_dir: Path) -> None:
    """Raise :class:`InputError` naming ``model_dir`` unless it holds a config, weights
    and a tokenizer."""
    if not model_dir.is_dir():
        raise InputError(f"cross-encoder directory {model_dir} does not exist")
    missing = [
        what
        for what, names in (
            ("config.json", ("config.json",)),
            ("weights (" + " or ".join(WEIGHT_FILES) + ")", WEIGHT_FILES),
            ("a tokenizer (" + " or ".join(TOKENIZER_FILES) + ")", TOKENIZER_FILES),
        )
        if not any((model_dir / n).is_file() for n in names)
    ]
    if missing:
        raise InputError(
            f"{model_dir} is not a cross-encoder model directory: missing {', '.join(missing)}; "
            "pass a HuggingFace sequence-classification folder or one written by "
            "`ragfleet reranker train`"
        )


class CrossEncoderReranker:
    """Scores ``(query, passage)`` pairs with a local sequence-classification model.

    Args:
        model_dir: the model folder (see the module docstring).
        config: candidate budget, batch size and ``max_tokens`` (pair truncation length).
        threads: torch intra-op threads (default: leave torch's setting).

    Raises:
        InputError: ``model_dir`` is not a model folder, or transformers cannot load it.
        MissingDependencyError: torch or transformers is not installed (extra ``torch``).
    """

    def __init__(
        self, model_dir: str | Path, config: RerankConfig | None = None, threads: int | None = None
    ) -> None:
        self.model_dir = Path(model_dir)
        check_model_dir(self.model_dir)
        self.config = config or RerankConfig()
        self.name = f"cross-encoder:{self.model_dir.name}"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self._torch: Any = require("torch", "torch")
        transformers = require("transformers", "torch")
        if threads is not None:
            self._torch.set_num_threads(threads)
        try:
            self._tok = transformers.AutoTokenizer.from_pretrained(str(self.model_dir))
            self._model = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(self.model_dir)
            )
        except (OSError, ValueError) as e:
            raise InputError(f"cannot load a cross-encoder from {self.model_dir}: {e}") from e
        self._model.eval()

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        """The relevance logit of each ``(query, text)`` pair, ``config.batch_size`` a call."""
        out = np.empty(len(texts), dtype=np.float32)
        step = self.config.batch_size
        with self._torch.inference_mode():
            for start in range(0, len(texts), step):
                batch = list(texts[start : start + step])
                enc = self._tok(
                    [query] * len(batch),
                    batch,
                    truncation="only_second",
                    max_length=self.config.max_tokens,
                    padding=True,
                    return_tensors="pt",
                )
                logits = self._model(**enc).logits
                out[start : start + len(batch)] = logits[:, -1].float().numpy()
        return out

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        """See :func:`ragfleet.rerank.base.rerank_with`."""
        return rerank_with(self, query, hits, top_n)
