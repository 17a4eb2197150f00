"""ragfleet: distributed retrieval for retrieval-augmented generation.

The public API is exactly ``__all__`` (pinned by ``tests/unit/test_public_api.py``).
``Collection`` and ``SearchRequest`` are imported on first use so that ``import ragfleet``
stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragfleet.config import CollectionConfig
from ragfleet.errors import (
    CollectionError,
    ConfigError,
    EmbeddingContractError,
    InputError,
    MissingDependencyError,
    RagfleetError,
)
from ragfleet.types import Chunk, Document, Hit, Results, StageTimings

if TYPE_CHECKING:
    from ragfleet.collection import Collection
    from ragfleet.search.request import SearchRequest

__version__ = "0.1.0"

__all__ = [
    "Chunk",
    "Collection",
    "CollectionConfig",
    "CollectionError",
    "ConfigError",
    "Document",
    "EmbeddingContractError",
    "Hit",
    "InputError",
    "MissingDependencyError",
    "RagfleetError",
    "Results",
    "SearchRequest",
    "StageTimings",
    "__version__",
]

_LAZY = {"Collection": "ragfleet.collection", "SearchRequest": "ragfleet.search.searcher"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ragfleet' has no attribute {name!r}")
