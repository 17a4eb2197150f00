"""The chunker factory: a :class:`ChunkerConfig` and a tokenizer make a :class:`Chunker`."""

from __future__ import annotations

from ragfleet.config import ChunkerConfig
from ragfleet.errors import UnknownSpecError
from ragfleet.ingest.base import Chunker, TokenChunker
from ragfleet.ingest.markdown import MarkdownChunker
from ragfleet.ingest.sentence import SentenceChunker
from ragfleet.ingest.tokenize import Tokenizer
from ragfleet.ingest.window import WindowChunker

__all__ = ["Chunker", "make_chunker"]

_CHUNKERS: dict[str, type[TokenChunker]] = {
    "window": WindowChunker,
    "sentence": SentenceChunker,
    "markdown": MarkdownChunker,
}


def make_chunker(config: ChunkerConfig, tokenizer: Tokenizer) -> Chunker:
    """The chunker ``config.kind`` names, counting tokens with ``tokenizer``.

    Raises:
        UnknownSpecError: ``config.kind`` is not a chunker (only possible for a config built
            around its own validation).
    """
    try:
        cls = _CHUNKERS[config.kind]
    except KeyError as e:
        raise UnknownSpecError(
            f"unknown chunker {config.kind!r}; choose one of {sorted(_CHUNKERS)}"
        ) from e
    return cls(config, tokenizer)
