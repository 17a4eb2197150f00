"""Request and response bodies of the HTTP API (pydantic), with their hard limits.

The limits here are the ceilings written into the OpenAPI document; a server may set
lower ones (:class:`~ragfleet.serve.settings.ServeSettings`), checked per request.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_K = 1000
MAX_QUERY_CHARS = 8192
MAX_DEPTH = 10_000
MAX_TIMEOUT_MS = 60_000.0
MAX_OVERSAMPLE = 100.0
MAX_BATCH_DOCS = 10_000
MAX_DOC_ID_CHARS = 512
MAX_EF_SEARCH = 65_536
MAX_NPROBE = 65_536

ModeName = Literal["dense", "sparse", "hybrid"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchBody(_Strict):
    """One search: the fields of ``ragfleet search``."""

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S")
    k: int = Field(10, ge=1, le=MAX_K)
    mode: ModeName | None = None
    filter: dict[str, Any] | None = Field(
        None, description='metadata filter, e.g. {"year": {"gte": 2015}}'
    )
    depth: int | None = Field(None, ge=1, le=MAX_DEPTH)
    ef_search: int | None = Field(None, ge=1, le=MAX_EF_SEARCH)
    nprobe: int | None = Field(None, ge=1, le=MAX_NPROBE)
    unique_docs: bool = False
    timeout_ms: float | None = Field(None, gt=0, le=MAX_TIMEOUT_MS)
    oversample: float | None = Field(
        None, ge=1, le=MAX_OVERSAMPLE,
        description="+refine specs: candidates per hit rescored from the on-disk vectors",
    )  # fmt: skip
    rescore: bool | None = Field(
        None, description="+refine specs: false ranks by the compressed codes alone"
    )


class AskBody(_Strict):
    """One question; ``stream`` answers as server-sent events."""

    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S")
    budget_ms: float | None = Field(None, gt=0, le=MAX_TIMEOUT_MS)
    stream: bool = False


class DocumentIn(_Strict):
    doc_id: str = Field(min_length=1, max_length=MAX_DOC_ID_CHARS, pattern=r"^[^\s#][^#]*$")
    text: str
    title: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpsertBody(_Strict):
    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_BATCH_DOCS)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


class HitOut(BaseModel):
    rank: int
    doc_id: str
    chunk_id: str
    score: float
    scores: dict[str, float]
    ranks: dict[str, int]
    title: str
    text: str
    shard: int
    metadata: dict[str, Any]


class CacheOut(BaseModel):
    hit: bool
    kind: str | None
    matched_query: str | None = None
    similarity: float | None = None


class SearchResponse(BaseModel):
    """The JSON of ``ragfleet search --json``."""

    hits: list[HitOut]
    timings_ms: dict[str, float]
    coverage: float
    missing_shards: list[int]
    mode: str
    cache: CacheOut


class CitationOut(BaseModel):
    n: int
    chunk_id: str
    doc_id: str
    span: list[int] | None


class AskResponse(BaseModel):
    """The JSON of ``ragfleet ask --json``."""

    question: str
    answer: str | None
    citations: list[CitationOut]
    generator: str | None
    truncated: bool
    hits: list[HitOut]
    timings_ms: dict[str, float]
    budget_ms: float
    slo_met: bool
    degraded: dict[str, str]
    coverage: float


class UpsertResponse(BaseModel):
    documents_seen: int
    documents_written: int
    documents_unchanged: int
    documents_empty: int
    chunks_written: int
    seconds: float
    generation: str


class DeleteResponse(BaseModel):
    doc_id: str
    deleted: bool
    generation: str


class ReplicaCounts(BaseModel):
    """Replicated shards (of the fleets served) and their replicas, named by no collection."""

    shards: int
    shards_down: int
    replicas: int
    replicas_healthy: int


class Health(BaseModel):
    status: str
    replicas: ReplicaCounts | None = None
