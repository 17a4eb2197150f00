"""The FastAPI application: routes of the HTTP API and the web page.

=======  ==================================  ======  ====================================
method   path                                scope   answer
=======  ==================================  ======  ====================================
POST     /v1/collections/{name}/search       read    ``ragfleet search --json``
POST     /v1/collections/{name}/ask          read    ``ragfleet ask --json`` or SSE events
POST     /v1/collections/{name}/documents    write   the upsert report
DELETE   /v1/collections/{name}/documents/…  write   ``{"doc_id", "deleted", "generation"}``
GET      /v1/collections/{name}/stats        read    collection statistics
GET      /openapi.json                       read    the OpenAPI document
GET      /metrics                            admin   Prometheus text format
GET      /healthz, /readyz                   —       liveness, readiness (replica counts)
GET      /, /ui/*                            —       the web page (static; holds no data)
=======  ==================================  ======  ====================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from ragfleet.collection import Collection
from ragfleet.errors import Cancelled, RagfleetError
from ragfleet.pipeline import Pipeline
from ragfleet.search.request import SearchRequest
from ragfleet.serve import errors
from ragfleet.serve.auth import KeyStore, Scope
from ragfleet.serve.gate import Gate
from ragfleet.serve.jsonbody import FastJSONResponse
from ragfleet.serve.logging import LOGGER, configure
from ragfleet.serve.replicas import readyz_answer
from ragfleet.serve.schemas import (
    AskBody,
    AskResponse,
    DeleteResponse,
    ErrorBody,
    Health,
    SearchBody,
    SearchResponse,
    UpsertBody,
    UpsertResponse,
)
from ragfleet.serve.service import Service
from ragfleet.serve.settings import ServeSettings
from ragfleet.types import Document

UI = Path(__file__).parent / "ui"
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 413, 422, 429, 504)
}
_CSP = (
    "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'"
)


def create_app(
    collections: Mapping[str, Collection],
    settings: ServeSettings,
    keys: KeyStore,
    pipelines: Mapping[str, Pipeline] | None = None,
    *,
    owns_collections: bool = False,
) -> FastAPI:
    """The application serving ``collections`` (name → open collection).

    Args:
        settings: limits, load control and observability switches.
        keys: the API keys allowed in.
        pipelines: per collection, the ``/ask`` pipeline (default: extractive answers).
        owns_collections: close the collections when the app shuts down (a writer
            checkpoints then: ``ragfleet serve`` on SIGTERM, SIGINT or SIGHUP).
    """
    svc = Service(collections, settings, keys, pipelines)
    configure()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.max_inflight + 8
        svc.instrument()
        try:
            yield
        finally:
            svc.close()
            if owns_collections:
                _close_collections(svc.collections)

    app = FastAPI(
        title="ragfleet", version="0.1.0", lifespan=lifespan, responses=_ERRORS,
        openapi_url=None, docs_url=None, redoc_url=None,
    )  # fmt: skip
    app.state.service = svc
    errors.install(app)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        Gate, max_body_bytes=settings.max_body_bytes, admission=svc.admission,  # type: ignore[arg-type]
        retry_after_s=settings.retry_after_s, metrics=svc.metrics,
        authenticator=svc.authenticator, body_timeout_s=settings.body_timeout_s,
    )  # fmt: skip
    _collection_routes(app, svc)
    _service_routes(app, svc)
    return app


def _close_collections(collections: Mapping[str, Collection]) -> None:
    """Checkpoint and close every collection, saying so in the log (a failure too: the
    writes are then safe in the log and replayed at the next start)."""
    log = logging.getLogger(LOGGER)
    for name, col in collections.items():
        seq = sum(s.seq for s in col.shards)
        try:
            col.close()
        except RagfleetError as e:
            log.error("close failed", extra={"fields": {"collection": name, "error": str(e)}})
            continue
        what = "closed (read-only)" if col.read_only else "checkpointed and closed"
        log.warning(what, extra={"fields": {"collection": name, "seq": seq}})


def _key(scope: Scope) -> Any:
    """A dependency that admits a request whose key may do ``scope`` on the path's collection."""

    async def dependency(request: Request) -> str:
        svc: Service = request.app.state.service
        name = request.path_params.get("name")
        return svc.authorize(getattr(request.state, "key_record", None), scope, name)

    return Depends(dependency)


def _collection_routes(app: FastAPI, svc: Service) -> None:
    base = "/v1/collections/{name}"

    @app.post(f"{base}/search", response_model=SearchResponse, dependencies=[_key("read")])
    async def search(name: str, body: SearchBody) -> JSONResponse:
        """Search one query; the response is the JSON of ``ragfleet search --json``."""
        svc.collection(name)
        svc.check_k(body.k)
        svc.check_text("query", body.query)
        searcher = svc.searchers[name]
        fields = body.model_dump(exclude={"query"})
        req = SearchRequest(**fields)  # the library's validation: one set of bounds
        out = await svc.timed(
            "search", name, lambda: searcher.search(body.query, req), lambda res: res.to_dict()
        )
        return FastJSONResponse(out)

    @app.post(
        f"{base}/ask", response_model=AskResponse, dependencies=[_key("read")],
        responses={200: {"content": {"text/event-stream": {}}}},
    )  # fmt: skip
    async def ask(name: str, body: AskBody) -> Response:
        """Answer a question with citations (``ragfleet ask --json``); with ``stream``, as
        server-sent events ``hits``, ``answer`` and ``done`` (the full JSON)."""
        svc.collection(name)
        svc.check_text("question", body.question)
        pipe = svc.pipelines[name]
        budget = body.budget_ms or svc.settings.ask_budget_ms
        if body.stream:
            return StreamingResponse(_ask_events(svc, name, pipe, body.question, budget),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-store"})  # fmt: skip
        out = await svc.timed(
            "ask", name, lambda: pipe.ask(body.question, budget_ms=budget), lambda r: r.to_dict()
        )
        return FastJSONResponse(out)

    @app.post(f"{base}/documents", response_model=UpsertResponse, dependencies=[_key("write")])
    async def upsert(name: str, body: UpsertBody, request: Request) -> JSONResponse:
        """Insert or replace a batch of documents (unchanged ones are skipped, documents
        with no text are skipped and listed). Embedding runs outside the collection's write
        lock; a client that disconnects meanwhile cancels the call before anything is
        written."""
        col = svc.collection(name)
        svc.check_writable()
        svc.check_batch(len(body.documents))
        docs = [Document(d.doc_id, d.text, d.title, d.metadata) for d in body.documents]
        gone = threading.Event()

        def cancel() -> None:
            if gone.is_set():
                raise Cancelled("the client disconnected; nothing of its documents was written")

        def write() -> dict[str, Any]:
            report = col.upsert(docs, cancel=cancel, max_chunks=svc.settings.max_request_chunks)
            out = {**vars(report), "generation": col.generation}
            out["skipped"] = [{"doc_id": d, "reason": why} for d, why in report.skipped]
            return out

        watch = asyncio.create_task(_watch_disconnect(request, gone))
        try:
            return JSONResponse(await svc.timed("upsert", name, write, lambda r: r))
        finally:
            watch.cancel()

    @app.delete(
        f"{base}/documents/{{doc_id:path}}", response_model=DeleteResponse,
        dependencies=[_key("write")],
    )  # fmt: skip
    async def delete(name: str, doc_id: str) -> JSONResponse:
        """Delete one document (every chunk of it); 404 if it does not exist."""
        col = svc.collection(name)
        svc.check_writable()

        def remove() -> dict[str, Any]:
            n = col.delete([doc_id])
            return {"doc_id": doc_id, "deleted": n > 0, "generation": col.generation}

        out = await svc.timed("delete", name, remove, lambda r: r)
        if not out["deleted"]:
            raise errors.ApiError(404, "not_found", f"no document {doc_id!r} in {name!r}")
        return JSONResponse(out)

    @app.get(f"{base}/stats", dependencies=[_key("read")])
    async def stats(name: str) -> JSONResponse:
        """Documents, chunks, shards, encoder and index of the collection."""
        col = svc.collection(name)
        out = await svc.timed("stats", name, col.stats, lambda s: s)
        out.pop("path", None)  # the server's filesystem layout is not the caller's business
        return JSONResponse({**out, "name": name, "generation": col.generation})


async def _watch_disconnect(request: Request, gone: threading.Event) -> None:
    """Set ``gone`` once the client of ``request`` disconnects (polled every 0.2 s)."""
    while not gone.is_set():
        if await request.is_disconnected():
            gone.set()
            return
        await asyncio.sleep(0.2)


async def _ask_events(
    svc: Service, name: str, pipe: Pipeline, question: str, budget: float
) -> AsyncIterator[bytes]:
    """SSE, each event sent as soon as it exists: ``hits`` (the passages, once final),
    ``token`` (each piece of the answer as it is generated), ``answer`` (text and
    citations), ``done`` (the full ``ask --json``) — or one ``error`` event with the JSON
    error body."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(event: str, data: Any) -> None:
        loop.call_soon_threadsafe(events.put_nowait, (event, data))

    def on_hits(hits: Any, coverage: float) -> None:
        put("hits", {"hits": [h.to_dict() for h in hits], "coverage": coverage})

    def run() -> Any:
        return pipe.ask(
            question,
            budget_ms=budget,
            on_hits=on_hits,
            on_token=lambda t: put("token", {"text": t}),
        ).to_dict()

    task = asyncio.ensure_future(svc.timed("ask", name, run, lambda r: r))
    while not (task.done() and events.empty()):
        getter = asyncio.ensure_future(events.get())
        await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            event, data = getter.result()
            yield _sse(event, data)
        else:
            getter.cancel()
    try:
        out = task.result()
    except Exception as e:  # the stream has started: report in-band, never a traceback
        status, code = errors.status_of(e) if isinstance(e, RagfleetError) else (500, "internal")
        message = str(e) if status < 500 else "internal error"
        yield _sse("error", {"error": {"code": code, "message": message, "status": status}})
        return
    yield _sse("answer", {k: out[k] for k in ("answer", "citations", "generator", "truncated")})
    yield _sse("done", out)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _service_routes(app: FastAPI, svc: Service) -> None:
    @app.get("/healthz", response_model=Health)
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}})
    async def readyz() -> JSONResponse:
        """Readiness: every collection is open and instrumented, and every shard of a fleet
        has a healthy replica (503 otherwise). It needs no key, so it names no collection:
        a fleet's counts are in ``replicas`` (``degraded``: some replica is unhealthy, every
        shard still serves), per replica in ``/v1/collections/{name}/stats`` and
        ``/metrics``."""
        body, status = readyz_answer(svc.ready, svc.collections)
        return JSONResponse(body, status)

    @app.get("/v1/collections")
    async def collections(key: str = _key("read")) -> JSONResponse:
        """The collections this key may use."""
        record = svc.keys.record_named(key)
        names = [n for n in sorted(svc.collections) if record is None or record.allows("read", n)]
        return JSONResponse({"collections": names})

    @app.get("/metrics", dependencies=[_key("admin")], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(svc.metrics.render(), media_type=svc.metrics.content_type)

    @app.get("/openapi.json", dependencies=[_key("read")], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(UI / "index.html", headers={"Content-Security-Policy": _CSP})

    app.mount("/ui", StaticFiles(directory=UI), name="ui")
