"""The embed stage: texts to vectors under a pinned :class:`EmbeddingContract`.

Encoders (``load_encoder("minilm-int8")``: int8 ONNX, no torch; ``load_encoder("minilm")``:
float32 sentence-transformers) implement :class:`Encoder`; :func:`embed_bulk` embeds a
corpus in token-budgeted batches. Importing this package imports no model runtime.
"""

from ragfleet.embed.base import Encoder
from ragfleet.embed.bulk import embed_bulk
from ragfleet.embed.contract import PROBE_TEXTS, EmbeddingContract
from ragfleet.embed.registry import encoder_names, load_encoder

__all__ = [
    "PROBE_TEXTS",
    "EmbeddingContract",
    "Encoder",
    "embed_bulk",
    "encoder_names",
    "load_encoder",
]
