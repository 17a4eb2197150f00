"""Query token vectors from the same encoder pass as the query's dense vector.

Late-interaction reranking needs the query's token vectors; the search already ran the
encoder on the query for its pooled vector. :class:`TokenCapture` wraps an encoder that
has ``encode_with_tokens`` (:class:`~ragfleet.embed.onnx.OnnxMiniLMEncoder`): its
``encode(texts, kind="query")`` runs one pass that yields both, returns the vectors and
remembers the token states of the last :data:`REMEMBER` queries, so that
:meth:`TokenCapture.query_tokens` is a dictionary look-up for a query just searched (and
one pass of its own for any other). Documents pass through unchanged.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ragfleet.embed.base import EncoderWrapper, Vectors
from ragfleet.errors import ConfigError
from ragfleet.types import EncodeKind

if TYPE_CHECKING:
    from ragfleet.embed.base import Encoder

#: How many queries' token states a capture keeps.
REMEMBER = 256
States = npt.NDArray[np.float32]


@runtime_checkable
class TokenEncoder(Protocol):
    """An encoder that returns pooled vectors and token states from one pass."""

    def encode_with_tokens(
        self, texts: Sequence[str], kind: EncodeKind = "document"
    ) -> tuple[Vectors, list[States]]: ...


def maxsim_states(states: States) -> States:
    """Drop ``[CLS]`` and ``[SEP]`` (first and last) and L2-normalise each row: the token
    vectors MaxSim compares (ColBERT, Khattab & Zaharia 2020)."""
    x = states[1:-1] if len(states) > 2 else states
    norms = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))
    return np.ascontiguousarray(x / norms, dtype=np.float32)


class TokenCapture(EncoderWrapper):
    """An :class:`~ragfleet.embed.base.Encoder` that remembers its queries' token vectors."""

    def __init__(self, encoder: Encoder, remember: int = REMEMBER) -> None:
        if not isinstance(encoder, TokenEncoder):
            raise ConfigError(
                f"encoder {encoder.name!r} cannot return token vectors; late interaction "
                "needs 'minilm-int8'"
            )
        self.inner = encoder
        self.name = encoder.name
        self._tokens: TokenEncoder = encoder
        self._remember = remember
        self._seen: OrderedDict[str, States] = OrderedDict()
        self._mutex = threading.Lock()
        self.passes = 0  # encoder passes run for queries (tests count them)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, texts: Sequence[str], kind: EncodeKind = "document") -> Vectors:
        if kind != "query":
            return self.inner.encode(texts, kind=kind)
        vectors, states = self._tokens.encode_with_tokens(texts, kind="query")
        self.passes += 1
        with self._mutex:
            for text, s in zip(texts, states, strict=True):
                self._seen[text] = maxsim_states(s)
                self._seen.move_to_end(text)
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        return vectors

    def query_tokens(self, query: str) -> States:
        """The unit token vectors ``[m, d]`` of ``query``: remembered from its search, else
        from a pass of their own."""
        with self._mutex:
            hit = self._seen.get(query)
        if hit is not None:
            return hit
        self.encode([query], kind="query")
        with self._mutex:
            return self._seen[query]
