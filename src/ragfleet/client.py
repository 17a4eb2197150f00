"""``ragfleet.Client``: the HTTP API from Python, with the same types as the engine.

>>> client = Client("http://127.0.0.1:8080", api_key="rf_…")  # doctest: +SKIP
>>> client.search("scifact", "microbiome and obesity", k=5).hits[0].doc_id  # doctest: +SKIP

A non-2xx answer raises :class:`HTTPError` (a :class:`~ragfleet.errors.RagfleetError`)
carrying the server's status, error code and message. A 429 is retried after its
``Retry-After`` (at most ``retries`` times) before it is raised.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ragfleet._optional import require
from ragfleet.config import SearchConfig
from ragfleet.errors import InputError, RagfleetError
from ragfleet.generate.base import Citation
from ragfleet.search.request import SearchRequest
from ragfleet.search.retriever import RetrieverBase
from ragfleet.search.searcher import check_queries
from ragfleet.types import CacheInfo, Document, Hit, Results

__all__ = ["AskResult", "Client", "HTTPError", "RemoteCollection"]


class HTTPError(RagfleetError):
    """The server answered with an error: ``status`` (HTTP), ``code`` and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class AskResult:
    """The answer of ``/ask``: the fields of ``ragfleet ask --json``."""

    question: str
    answer: str | None
    citations: tuple[Citation, ...]
    generator: str | None
    hits: tuple[Hit, ...]
    timings_ms: Mapping[str, float]
    budget_ms: float
    slo_met: bool
    truncated: bool = False
    degraded: Mapping[str, str] = field(default_factory=dict)
    coverage: float = 1.0


def hit_from_dict(d: Mapping[str, Any]) -> Hit:
    return Hit(
        rank=int(d["rank"]), doc_id=d["doc_id"], chunk_id=d["chunk_id"], score=float(d["score"]),
        text=d["text"], shard=int(d["shard"]), title=d.get("title", ""),
        scores=dict(d.get("scores", {})), ranks=dict(d.get("ranks", {})),
        metadata=dict(d.get("metadata", {})),
    )  # fmt: skip


def results_from_dict(d: Mapping[str, Any]) -> Results:
    """The inverse of :meth:`Results.to_dict`."""
    cache = d.get("cache") or {}
    return Results(
        tuple(hit_from_dict(h) for h in d["hits"]), dict(d["timings_ms"]), float(d["coverage"]),
        tuple(d.get("missing_shards", ())), d.get("mode", "dense"),
        CacheInfo(bool(cache.get("hit")), cache.get("kind"), cache.get("matched_query"),
                  cache.get("similarity")),
    )  # fmt: skip


def _ask_from_dict(d: Mapping[str, Any]) -> AskResult:
    cites = tuple(
        Citation(c["n"], c["chunk_id"], c["doc_id"], tuple(c["span"]) if c.get("span") else None)  # type: ignore[arg-type]
        for c in d.get("citations", ())
    )
    return AskResult(
        d["question"], d.get("answer"), cites, d.get("generator"),
        tuple(hit_from_dict(h) for h in d["hits"]), dict(d["timings_ms"]), float(d["budget_ms"]),
        bool(d["slo_met"]), bool(d.get("truncated")), dict(d.get("degraded", {})),
        float(d.get("coverage", 1.0)),
    )  # fmt: skip


class Client:
    """A client of one ragfleet server.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:8080``.
        api_key: sent as ``Authorization: Bearer KEY``.
        timeout: seconds per request.
        retries: how many times a 429 is retried after its Retry-After.
        transport: an ``httpx`` transport (tests: ``httpx.ASGITransport``… or a mock server).
    """

    def __init__(
        self, url: str, api_key: str | None = None, *, timeout: float = 30.0, retries: int = 2,
        transport: Any = None,
    ) -> None:  # fmt: skip
        httpx = require("httpx", "serve")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.retries = retries
        self.base_url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        for attempt in range(self.retries + 1):
            res = self._http.request(method, path, json=body)
            if res.status_code != 429 or attempt == self.retries:
                break
            time.sleep(float(res.headers.get("retry-after", "1")))
        if res.is_success:
            return res.json()
        try:
            err = res.json()["error"]
            code, message = str(err["code"]), str(err["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", res.text[:200]
        raise HTTPError(res.status_code, code, message)

    def collection(self, name: str) -> RemoteCollection:
        """The collection ``name`` of this server as a
        :class:`~ragfleet.search.retriever.Retriever`."""
        return RemoteCollection(self, name)

    def search(
        self, collection: str, query: str, req: SearchRequest | None = None, **params: Any
    ) -> Results:
        """As :meth:`ragfleet.Collection.search`, over HTTP (the request is validated here
        too, with the same bounds)."""
        req = SearchRequest.of(req, **params)
        body = {
            "query": query,
            **{k: v for k, v in dataclasses.asdict(req).items() if v is not None},
        }
        return results_from_dict(self._call("POST", f"/v1/collections/{collection}/search", body))

    def ask(self, collection: str, question: str, *, budget_ms: float | None = None) -> AskResult:
        """A cited answer to ``question`` within ``budget_ms``."""
        body = {"question": question, "budget_ms": budget_ms}
        return _ask_from_dict(self._call("POST", f"/v1/collections/{collection}/ask", body))

    def upsert(
        self, collection: str, docs: Iterable[Document], *, batch_size: int = 500
    ) -> dict[str, Any]:
        """Upsert ``docs`` in batches; returns the summed report and the last generation."""
        total: dict[str, Any] = {}
        batch: list[dict[str, Any]] = []
        for doc in docs:
            batch.append({"doc_id": doc.doc_id, "text": doc.text, "title": doc.title,
                          "metadata": dict(doc.metadata)})  # fmt: skip
            if len(batch) == batch_size:
                total = _add_reports(total, self._upsert(collection, batch))
                batch = []
        if batch:
            total = _add_reports(total, self._upsert(collection, batch))
        if not total:
            raise InputError("no documents to upsert")
        return total

    def _upsert(self, collection: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = self._call(
            "POST", f"/v1/collections/{collection}/documents", {"documents": batch}
        )
        return out

    def delete(self, collection: str, doc_ids: Sequence[str]) -> int:
        """Delete documents; returns how many existed."""
        n = 0
        for doc_id in doc_ids:
            try:
                self._call(
                    "DELETE", f"/v1/collections/{collection}/documents/{quote(doc_id, safe='')}"
                )
                n += 1
            except HTTPError as e:
                if e.status != 404 or e.code != "not_found":
                    raise
        return n

    def stats(self, collection: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/v1/collections/{collection}/stats")
        return out


class RemoteCollection(RetrieverBase):
    """A collection behind ``ragfleet serve``, as a Retriever (``Client.collection``).

    ``generation`` asks the server (one ``GET …/stats``), so a cache in front of a remote
    collection pays that call per lookup; ``defaults`` are fetched once.
    """

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self._defaults: SearchConfig | None = None

    def search_batch(
        self, queries: Sequence[str], req: SearchRequest | None = None
    ) -> list[Results]:
        check_queries(queries)
        return [self.client.search(self.name, q, req) for q in queries]

    @property
    def generation(self) -> str:
        return str(self.client.stats(self.name)["generation"])

    @property
    def defaults(self) -> SearchConfig:
        if self._defaults is None:
            self._defaults = SearchConfig(**self.client.stats(self.name)["search"])
        return self._defaults

    @property
    def identity(self) -> str:
        return f"{self.client.base_url}/{self.name}"

    @property
    def encoder(self) -> None:
        return None


def _add_reports(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(b)
    for key, value in a.items():
        if isinstance(value, int | float) and key in b and not isinstance(value, bool):
            out[key] = value + b[key]
    return out
