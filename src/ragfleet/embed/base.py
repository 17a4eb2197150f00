"""The :class:`Encoder` protocol and the helpers every encoder shares.

An encoder turns texts into float32 vectors ``[n, d]``, C-contiguous, unit L2 norm when
its contract says ``normalize``. It carries its :class:`EmbeddingContract` (model fields
only: ``chunker`` is ``""`` and there are no probes) and the tokenizer it counts tokens
with, so that chunkers and the bulk pipeline count exactly what the model will see.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ragfleet.errors import InputError
from ragfleet.types import EncodeKind

if TYPE_CHECKING:
    from ragfleet.embed.contract import EmbeddingContract
    from ragfleet.ingest.tokenize import Tokenizer

KINDS: tuple[EncodeKind, ...] = ("query", "document")

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Encoder(Protocol):
    """Texts in, float32 ``[n, dim]`` vectors out.

    ``name`` is the registry name (``load_encoder(name)`` rebuilds an equal encoder in
    another process); ``contract`` pins the model so a collection can refuse another one.
    """

    name: str

    @property
    def dim(self) -> int: ...

    @property
    def contract(self) -> EmbeddingContract: ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    def encode(self, texts: Sequence[str], kind: EncodeKind = "document") -> Vectors:
        """Embed ``texts``; ``kind`` selects the contract's query or document prefix.

        Returns float32 ``[len(texts), dim]``, C-contiguous; ``(0, dim)`` for no texts.
        Raises :class:`InputError` for a non-string item or an unknown ``kind``.
        """
        ...


class EncoderWrapper:
    """Base of an encoder around another one, ``inner`` (batching, token capture): the same
    dimension, contract and tokenizer; a subclass sets ``inner`` and ``name`` and encodes."""

    inner: Encoder
    name: str

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def contract(self) -> EmbeddingContract:
        return self.inner.contract

    @property
    def tokenizer(self) -> Tokenizer:
        return self.inner.tokenizer


def check_texts(texts: Sequence[str], kind: str = "document") -> list[str]:
    """Validate an encoder's input and return it as a list.

    Raises:
        InputError: ``texts`` is a bare string (a common slip: it would embed each
            character), an item is not a ``str``, or ``kind`` is not query/document.
    """
    if kind not in KINDS:
        raise InputError(f"kind must be 'query' or 'document', got {kind!r}")
    if isinstance(texts, str | bytes):
        raise InputError("texts must be a sequence of strings, not one string; wrap it: [text]")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"texts[{i}] is {type(t).__name__}, not str; pass strings only")
    return out


def with_prefix(texts: list[str], prefix: str) -> list[str]:
    """``prefix + text`` for each text (the model's query/document instruction)."""
    return [prefix + t for t in texts] if prefix else texts


def l2_normalize(x: Vectors, eps: float = 1e-12) -> Vectors:
    """Rows divided by ``max(‖row‖₂, eps)`` (as ``torch.nn.functional.normalize``)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, eps), dtype=np.float32)


_SHA_CACHE: dict[tuple[str, int, int], str] = {}
_SHA_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, streamed, cached per (resolved path, mtime_ns, size).

    A changed file (new mtime or size) is hashed again; an unchanged one costs a stat.
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    with _SHA_LOCK:
        cached = _SHA_CACHE.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    with _SHA_LOCK:
        _SHA_CACHE[key] = digest
    return digest
