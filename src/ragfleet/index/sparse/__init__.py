"""The sparse (BM25) index of one shard and its text analyzer."""

from ragfleet.index.sparse.analyzer import Analyzer
from ragfleet.index.sparse.bm25 import BM25Index, ShardTermStats, bm25_idf

__all__ = ["Analyzer", "BM25Index", "ShardTermStats", "bm25_idf"]
