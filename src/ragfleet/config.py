"""Frozen configuration, one dataclass per stage, composed into :class:`CollectionConfig`.

Configs are values: a component reads its config and never mutates it. The whole
``CollectionConfig`` is saved as JSON in ``collection.json`` beside the index it built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from ragfleet.errors import ConfigError, UnknownSpecError

ChunkerKind = Literal["window", "sentence", "markdown"]
_CHUNKERS = ("window", "sentence", "markdown")


@dataclass(frozen=True)
class ChunkerConfig:
    """How documents are cut into chunks (part of the embedding contract).

    ``kind``: ``window`` (token window sharing at least ``overlap`` tokens with the previous
    one, cut between words), ``sentence`` (sentences packed up
    to ``max_tokens``), ``markdown`` (split at headings, then sentence-packed).
    Tokens are counted with the encoder's own tokenizer.
    """

    kind: ChunkerKind = "sentence"
    max_tokens: int = 256
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.kind not in _CHUNKERS:
            raise UnknownSpecError(f"unknown chunker {self.kind!r}; choose one of {_CHUNKERS}")
        if self.max_tokens < 8:
            raise ConfigError(f"chunker max_tokens must be >= 8, got {self.max_tokens}")
        if not 0 <= self.overlap < self.max_tokens:
            raise ConfigError(
                f"chunker overlap must be in [0, max_tokens), got {self.overlap} "
                f"with max_tokens={self.max_tokens}"
            )

    @classmethod
    def parse(cls, spec: str) -> ChunkerConfig:
        """Parse ``"window:256:32"``, ``"sentence:256"``, ``"markdown:200"`` or a bare kind."""
        parts = spec.strip().split(":")
        try:
            nums = [int(p) for p in parts[1:]]
        except ValueError as e:
            raise UnknownSpecError(
                f"bad chunker spec {spec!r}: expected KIND[:MAX_TOKENS[:OVERLAP]], "
                "e.g. window:256:32"
            ) from e
        if len(nums) > 2:
            raise UnknownSpecError(f"bad chunker spec {spec!r}: at most two numbers")
        kwargs: dict[str, Any] = {"kind": parts[0]}
        if nums:
            kwargs["max_tokens"] = nums[0]
            kwargs["overlap"] = nums[1] if len(nums) > 1 else min(32, nums[0] // 8)
        return cls(**kwargs)

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.max_tokens}:{self.overlap}"


@dataclass(frozen=True)
class EncoderConfig:
    """Which encoder embeds the collection and how bulk embedding is batched.

    ``batch_tokens``: a bulk batch holds at most this many (padded) tokens;
    ``workers``: local processes for bulk embedding (0 = in this process);
    ``truncate_dim``: keep the first ``truncate_dim`` coordinates of each vector,
    renormalised (``ragfleet.embed.truncate``; recorded in the embedding contract).
    """

    name: str = "minilm-int8"
    batch_tokens: int = 16384
    workers: int = 0
    truncate_dim: int | None = None

    def __post_init__(self) -> None:
        if self.truncate_dim is not None and (
            isinstance(self.truncate_dim, bool)
            or not isinstance(self.truncate_dim, int)
            or self.truncate_dim < 1
        ):
            raise ConfigError(f"truncate_dim must be an int >= 1, got {self.truncate_dim!r}")
        if self.batch_tokens < 64:
            raise ConfigError(f"encoder batch_tokens must be >= 64, got {self.batch_tokens}")
        if self.workers < 0:
            raise ConfigError(f"encoder workers must be >= 0, got {self.workers}")


@dataclass(frozen=True)
class IndexConfig:
    """The dense index of every shard: a FAISS spec (``flat``, ``hnsw32``, ``ivf1024``,
    ``ivf,pq48+refine``, ``binary``, ``sq8``… — ``ragfleet.index.specs``) and the default
    search-time parameters: ``ef_search`` (HNSW), ``nprobe`` (IVF), and for ``+refine``
    specs ``oversample`` (candidates per hit rescored; ``None``: the measured default of
    the spec's codes, ``ragfleet.index.dense.DEFAULT_OVERSAMPLE``) and ``rescore``."""

    spec: str = "flat"
    metric: Literal["ip", "l2"] = "ip"
    ef_search: int = 128
    nprobe: int = 16
    oversample: float | None = None
    rescore: bool = True

    def __post_init__(self) -> None:
        if self.metric not in ("ip", "l2"):
            raise ConfigError(f"metric must be 'ip' or 'l2', got {self.metric!r}")
        if self.ef_search < 1 or self.nprobe < 1:
            raise ConfigError("ef_search and nprobe must be >= 1")
        if self.oversample is not None and not (
            isinstance(self.oversample, int | float) and self.oversample >= 1
        ):
            raise ConfigError(f"oversample must be >= 1 (or None), got {self.oversample!r}")
        if not isinstance(self.rescore, bool):
            raise ConfigError(f"rescore must be true or false, got {self.rescore!r}")


@dataclass(frozen=True)
class AnalyzerConfig:
    """Text analysis for BM25: lowercase, drop stopwords, stem (Snowball)."""

    lowercase: bool = True
    stopwords: str | None = "english"
    stemmer: str | None = "english"


@dataclass(frozen=True)
class SparseConfig:
    """BM25 (Robertson & Zaragoza 2009) parameters and its analyzer."""

    enabled: bool = True
    k1: float = 0.9
    b: float = 0.4
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1} b={self.b}")


TOKEN_CODECS = ("fp32", "fp16", "int8", "int4")


@dataclass(frozen=True)
class TokensConfig:
    """Late interaction: whether each chunk's token vectors are stored at ingest (from the
    encoder pass that embeds it), and how they are packed (``codec``, see
    :mod:`ragfleet.index.tokens_codec`), after ``pool``: each chunk's tokens merged into
    ``⌈T / pool⌉`` cluster means (:mod:`ragfleet.index.tokens_pool`; 1 keeps every token).
    The default, int8 after 2-fold pooling, keeps fp32's SciFact nDCG@10 by MaxSim alone
    (0.7284 at a rerank depth of 50) at an eighth of the bytes and half the MaxSim work;
    3-fold pooling loses 0.008 (``benchmarks/late_codecs.py``)."""

    enabled: bool = False
    codec: str = "int8"
    pool: int = 2

    def __post_init__(self) -> None:
        from ragfleet.index.tokens_pool import MAX_POOL_FACTOR

        if self.codec not in TOKEN_CODECS:
            raise ConfigError(f"unknown token codec {self.codec!r}; choose one of {TOKEN_CODECS}")
        if not (type(self.pool) is int and 1 <= self.pool <= MAX_POOL_FACTOR):
            raise ConfigError(
                f"token pool factor must be an int in [1, {MAX_POOL_FACTOR}], got {self.pool!r}"
            )

    @property
    def spec(self) -> str:
        """What the embedding contract records: ``""`` when disabled, else the codec
        (``"int8"``), with ``"-pool2"`` appended when tokens are pooled."""
        if not self.enabled:
            return ""
        return self.codec + (f"-pool{self.pool}" if self.pool > 1 else "")


#: Most shards per collection: each holds a few open files (log, docstore, lock), and a
#: collection needs them all open at once (``ulimit -n`` is checked against it too).
MAX_SHARDS = 256


@dataclass(frozen=True)
class ShardingConfig:
    """How chunks are placed on shards: all chunks of a document on one shard, by a hash of
    its id (``hash``) or by the nearest k-means centroid of its vectors (``centroids``, see
    :mod:`ragfleet.cluster.placement`)."""

    n_shards: int = 1
    placement: Literal["hash", "centroids"] = "hash"

    def __post_init__(self) -> None:
        if isinstance(self.n_shards, bool) or not isinstance(self.n_shards, int):
            raise ConfigError(f"n_shards must be an integer, got {self.n_shards!r}")
        if not 1 <= self.n_shards <= MAX_SHARDS:
            raise ConfigError(f"n_shards must be between 1 and {MAX_SHARDS}, got {self.n_shards}")
        if self.placement not in ("hash", "centroids"):
            raise ConfigError(f"unknown placement {self.placement!r}; choose 'hash' or 'centroids'")


@dataclass(frozen=True)
class SearchConfig:
    """Query-time defaults: mode, k, candidate depth per signal, fusion."""

    mode: Literal["dense", "sparse", "hybrid"] = "hybrid"
    k: int = 10
    depth: int = 100
    fusion: Literal["rrf", "minmax", "zscore"] = "rrf"
    rrf_k: int = 60
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in ("dense", "sparse", "hybrid"):
            raise ConfigError(f"mode must be dense, sparse or hybrid, got {self.mode!r}")
        if self.k < 1 or self.depth < 1 or self.rrf_k < 0:
            raise ConfigError("k and depth must be >= 1 and rrf_k >= 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")


@dataclass(frozen=True)
class CollectionConfig:
    """Everything that defines a collection, saved as ``collection.json``."""

    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    sparse: SparseConfig = field(default_factory=SparseConfig)
    sharding: ShardingConfig = field(default_factory=ShardingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectionConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (no silent drift)."""
        try:
            sparse = dict(d.get("sparse", {}))
            if "analyzer" in sparse:
                sparse["analyzer"] = AnalyzerConfig(**sparse["analyzer"])
            return cls(
                chunker=ChunkerConfig(**d.get("chunker", {})),
                encoder=EncoderConfig(**d.get("encoder", {})),
                index=IndexConfig(**d.get("index", {})),
                sparse=SparseConfig(**sparse),
                sharding=ShardingConfig(**d.get("sharding", {})),
                search=SearchConfig(**d.get("search", {})),
                # a collection.json from before pooling stored every token: pool 1
                tokens=TokensConfig(**{"pool": 1, **d.get("tokens", {})}),
            )
        except TypeError as e:
            raise ConfigError(f"invalid collection config: {e}") from e

    def replace(self, **changes: Any) -> CollectionConfig:
        return dataclasses.replace(self, **changes)
