"""Result, embedding and semantic caches; in-process and Redis backends; single-flight.

Nothing heavy is imported here: ``RedisCache`` imports ``redis`` and ``SemanticCache``
imports ``faiss`` when constructed.
"""

from ragfleet.cache.base import CacheBackend, CacheStats
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
    "MemoryCache",
    "RedisCache",
    "SemanticCache",
    "SemanticMatch",
    "SingleFlight",
    "TieredCache",
    "embedding_key",
    "normalize_query",
    "result_key",
]
