"""Result, embedding and semantic caches; in-process and Redis backends; single-flight.

Nothing heavy is imported here: ``RedisCache`` imports ``redis`` and ``SemanticCache``
imports ``faiss`` when constructed. The cached read path over a collection lives in
:mod:`ragfleet.cache.search` (``CachedSearch``, ``SemanticCacheConfig``) and is not
re-exported, so that the write path can import the embedding cache from here without
importing the searcher.
"""

from ragfleet.cache.base import CacheBackend, CacheStats
from ragfleet.cache.calls import CallCache
from ragfleet.cache.codec import results_from_bytes, results_to_bytes
from ragfleet.cache.embeddings import EmbeddingCache, embed_with_cache
from ragfleet.cache.factory import cache_backend
from ragfleet.cache.guard import GuardedCache
from ragfleet.cache.keys import embedding_key, normalize_query, result_key
from ragfleet.cache.memory import MemoryCache
from ragfleet.cache.metrics import CacheMetrics
from ragfleet.cache.redis import RedisCache
from ragfleet.cache.semantic import SemanticCache, SemanticMatch
from ragfleet.cache.singleflight import AsyncSingleFlight, SingleFlight
from ragfleet.cache.tiered import TieredCache

__all__ = [
    "AsyncSingleFlight",
    "CacheBackend",
    "CacheMetrics",
    "CacheStats",
    "CallCache",
    "EmbeddingCache",
    "GuardedCache",
    "MemoryCache",
    "RedisCache",
    "SemanticCache",
    "SemanticMatch",
    "SingleFlight",
    "TieredCache",
    "cache_backend",
    "embed_with_cache",
    "embedding_key",
    "normalize_query",
    "result_key",
    "results_from_bytes",
    "results_to_bytes",
]
