"""Wordpiece tokenization for chunking: character spans and model-visible token counts.

Chunkers count tokens with the encoder's own tokenizer, so that ``max_tokens`` means what
the model sees. :class:`HFTokenizer` wraps a HuggingFace ``tokenizer.json`` (the
``tokenizers`` library, extra ``onnx``); :func:`minilm_tokenizer` loads the vendored
WordPiece tokenizer of all-MiniLM-L6-v2.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ragfleet._optional import require
from ragfleet.errors import InputError

_MINILM = Path(__file__).resolve().parent.parent / "assets" / "minilm-tokenizer.json"


@runtime_checkable
class Tokenizer(Protocol):
    """What a chunker needs from a tokenizer; batch-first."""

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """The ``(start, end)`` character span of every token of each text, in order,
        special tokens ([CLS], [SEP]) excluded."""
        ...

    def count(self, texts: Sequence[str]) -> list[int]:
        """The number of tokens the model sees for each text, special tokens included."""
        ...


class HFTokenizer:
    """A :class:`Tokenizer` over a HuggingFace ``tokenizer.json``.

    Truncation and padding are disabled: offsets cover the whole text and counts are the
    untruncated lengths.
    """

    __slots__ = ("_tok", "path")

    def __init__(self, path: str | Path) -> None:
        tokenizers = require("tokenizers", "onnx")
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"tokenizer file {self.path} does not exist; pass a tokenizer.json")
        try:
            tok: Any = tokenizers.Tokenizer.from_file(str(self.path))
        except Exception as e:  # tokenizers raises a bare Exception on a malformed file
            raise InputError(f"cannot load tokenizer {self.path}: {e}") from e
        tok.no_truncation()
        tok.no_padding()
        self._tok = tok

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [e.offsets for e in encodings]

    def count(self, texts: Sequence[str]) -> list[int]:
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=True)
        return [len(e.ids) for e in encodings]

    def __repr__(self) -> str:
        return f"HFTokenizer({str(self.path)!r})"


@functools.cache
def minilm_tokenizer() -> HFTokenizer:
    """The WordPiece tokenizer of all-MiniLM-L6-v2 (vendored in ``ragfleet/assets``), cached."""
    return HFTokenizer(_MINILM)
