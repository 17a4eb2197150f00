"""What every chunker shares: the protocol, token spans, and turning token ranges into chunks.

A chunker decides *where* to cut (token ranges, optionally with a section name); this
module does the rest the same way for all of them: one batched tokenizer call per batch of
documents, character offsets from the token spans, stripping, ids and content hashes.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ragfleet.config import ChunkerConfig
from ragfleet.ingest.hashing import content_hash
from ragfleet.ingest.tokenize import Tokenizer
from ragfleet.types import Chunk, Document, chunk_id_of

#: ``fits(lo, hi)``: whether tokens ``lo:hi`` of a text, cut out and re-tokenized, fit the budget.
Fits = Callable[[int, int], bool]

#: The chunk metadata key of a markdown chunk's heading path.
SECTION_KEY = "section"

#: Documents tokenized per tokenizer call in :meth:`TokenChunker.chunk_many`.
BATCH_DOCS = 512


@runtime_checkable
class Chunker(Protocol):
    """Cuts documents into chunks of at most ``config.max_tokens`` tokens of text."""

    config: ChunkerConfig

    def chunk(self, doc: Document) -> list[Chunk]: ...

    def chunk_many(self, docs: Iterable[Document]) -> list[Chunk]: ...


@dataclass(frozen=True, slots=True)
class TokenSpans:
    """The tokens of one text: ``starts[i]:ends[i]`` is token ``i``'s character span."""

    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]

    @classmethod
    def from_offsets(cls, offsets: Sequence[tuple[int, int]]) -> TokenSpans:
        flat = np.fromiter(
            itertools.chain.from_iterable(offsets), dtype=np.int64, count=2 * len(offsets)
        )
        pairs = flat.reshape(-1, 2)
        return cls(pairs[:, 0], pairs[:, 1])

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def bounds(self, max_tokens: int) -> tuple[list[int], frozenset[int]]:
        """Token positions where a cut is safe, ascending from 0 to ``len(self)``, and the
        subset of them that lie inside a word.

        A cut before token ``i`` is safe when characters (whitespace) separate it from token
        ``i - 1``: the pieces then re-tokenize to exactly the tokens they hold, because
        WordPiece tokenizes each whitespace-delimited word on its own. Inside a word longer
        than ``max_tokens`` tokens every position is a bound too, or it could never be cut;
        a piece cut there may re-tokenize differently, so :meth:`TokenChunker.grid`
        re-counts such pieces.
        """
        n = len(self)
        gap = np.flatnonzero(self.starts[1:] > self.ends[:-1]) + 1
        words = np.concatenate(([0], gap, [n])) if n else np.zeros(1, dtype=np.int64)
        long_words = np.flatnonzero(np.diff(words) > max_tokens)
        if not long_words.size:
            return words.tolist(), frozenset()
        inner = np.concatenate([np.arange(words[w] + 1, words[w + 1]) for w in long_words])
        return np.union1d(words, inner).tolist(), frozenset(inner.tolist())


def always_fits(lo: int, hi: int) -> bool:
    """The :data:`Fits` of a text cut only between words: every window within budget fits."""
    return True


@dataclass(frozen=True, slots=True)
class Cut:
    """Tokens ``lo:hi`` of a document become one chunk; ``section`` goes into its metadata."""

    lo: int
    hi: int
    section: str | None = None


class TokenChunker(ABC):
    """Base of the chunkers: subclasses implement :meth:`cuts`, this class the rest."""

    __slots__ = ("_specials", "config", "tokenizer")

    def __init__(self, config: ChunkerConfig, tokenizer: Tokenizer) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self._specials = tokenizer.count([""])[0]  # [CLS] and [SEP]: not part of the budget

    def grid(self, text: str, tokens: TokenSpans) -> tuple[list[int], Fits]:
        """Where ``text`` may be cut (see :meth:`TokenSpans.bounds`) and a :data:`Fits` that
        re-counts a piece with the tokenizer only when one of its ends lies inside a word."""
        bounds, inword = tokens.bounds(self.config.max_tokens)
        if not inword:
            return bounds, always_fits

        def fits(lo: int, hi: int) -> bool:
            if lo not in inword and hi not in inword:
                return True
            piece = text[int(tokens.starts[lo]) : int(tokens.ends[hi - 1])]
            return self.tokenizer.count([piece])[0] - self._specials <= self.config.max_tokens

        return bounds, fits

    @abstractmethod
    def cuts(self, text: str, tokens: TokenSpans) -> list[Cut]:
        """Where to cut ``text``: token ranges of at most ``config.max_tokens`` tokens."""

    def chunk(self, doc: Document) -> list[Chunk]:
        """The chunks of one document (none when its text is blank)."""
        return self.chunk_many([doc])

    def chunk_many(self, docs: Iterable[Document]) -> list[Chunk]:
        """The chunks of many documents, in order; the tokenizer runs once per batch."""
        out: list[Chunk] = []
        it = iter(docs)
        while batch := list(itertools.islice(it, BATCH_DOCS)):
            offsets = self.tokenizer.offsets([d.text for d in batch])
            for doc, offs in zip(batch, offsets, strict=True):
                if offs:
                    tokens = TokenSpans.from_offsets(offs)
                    out.extend(make_chunks(doc, tokens, self.cuts(doc.text, tokens)))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.spec!r})"


def make_chunks(doc: Document, tokens: TokenSpans, cuts: Sequence[Cut]) -> list[Chunk]:
    """Chunks for ``cuts``: ``text = doc.text[start:end]`` with ``start``/``end`` moved
    inwards past any whitespace, so the text is already stripped; blank cuts are dropped."""
    chunks: list[Chunk] = []
    starts, ends = tokens.starts, tokens.ends
    for cut in cuts:
        start, end = int(starts[cut.lo]), int(ends[cut.hi - 1])
        raw = doc.text[start:end]
        text = raw.strip()
        if not text:
            continue
        start += len(raw) - len(raw.lstrip())
        end = start + len(text)
        meta = doc.metadata if cut.section is None else {**doc.metadata, SECTION_KEY: cut.section}
        n = len(chunks)
        chunks.append(
            Chunk(
                chunk_id=chunk_id_of(doc.doc_id, n),
                doc_id=doc.doc_id,
                n=n,
                text=text,
                title=doc.title,
                start=start,
                end=end,
                content_hash=content_hash(doc.title, text),
                metadata=meta,
            )
        )
    return chunks
