"""``ragfleet serve`` and the ``ragfleet keys`` group."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ragfleet.cli._common import fail, subgroup, user_errors


def register(app: typer.Typer) -> None:
    """Add ``serve``, the ``keys`` group and ``bench load`` (:mod:`ragfleet.cli.load_cmds`,
    into an existing ``bench`` group when there is one, so register after
    ``bench.register``)."""
    from ragfleet.cli import load_cmds

    app.command("serve")(serve)
    keys = typer.Typer(help="Manage API keys.", no_args_is_help=True)
    keys.command("add")(keys_add)
    keys.command("list")(keys_list)
    keys.command("revoke")(keys_revoke)
    keys.command("rotate")(keys_rotate)
    app.add_typer(keys, name="keys")
    subgroup(app, "bench", "Benchmark ragfleet.").command("load")(load_cmds.load)


def serve(
    dirs: Annotated[list[Path], typer.Argument(help="collection directories to serve")],
    keys: Annotated[Path | None, typer.Option("--keys", help="API keys file (required)")] = None,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    workers: Annotated[int, typer.Option(help="worker processes (>1: read-only)")] = 1,
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="serve beside another writer: refuse writes (409)"),
    ] = False,
    certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM)")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="allowed origin, repeatable")
    ] = None,
    max_inflight: Annotated[
        int | None, typer.Option(help="requests in flight before 429 (default: 4 per core)")
    ] = None,
    header_timeout: Annotated[
        float, typer.Option(help="seconds a connection has to send a request's headers")
    ] = 10.0,
    max_connections: Annotated[
        int, typer.Option(help="open connections in all (more get 503)")
    ] = 1024,
    max_connections_per_client: Annotated[
        int, typer.Option(help="open connections from one address (more are closed)")
    ] = 32,
    max_request_chunks: Annotated[
        int, typer.Option(help="most chunks one upsert request may create")
    ] = 1024,
    rate: Annotated[float, typer.Option(help="requests/s per key (0: unlimited)")] = 100.0,
    burst: Annotated[int, typer.Option(help="token-bucket burst per key")] = 200,
    batching: Annotated[bool, typer.Option(help="micro-batch query embeddings")] = True,
    batch_max: Annotated[int, typer.Option(help="queries per micro-batch")] = 32,
    batch_wait_ms: Annotated[
        float, typer.Option(help="wait this long for more queries to batch (0: never)")
    ] = 0.0,
    answer_dense: Annotated[
        bool, typer.Option(help="/ask answers use the encoder too (better, ~80 ms slower)")
    ] = False,
    trace_exporter: Annotated[str, typer.Option(help="none | console | otlp")] = "none",
    cache_mb: Annotated[int, typer.Option(help="in-process result cache, MiB (0: off)")] = 256,
    cache_url: Annotated[str | None, typer.Option(help="shared Redis result cache")] = None,
    reranker: Annotated[
        str, typer.Option(help="/ask reranks with: late (stored token vectors) | maxsim | ''")
    ] = "",
    rerank_n: Annotated[int, typer.Option("--rerank-n", help="/ask rerank candidates")] = 50,
    late_weight: Annotated[
        float | None,
        typer.Option("--late-weight", help="/ask late reranker: first-stage weight in [0, 1]"),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="serve each collection as a fleet of replicated shards: ray | local"),
    ] = None,
    replicas: Annotated[
        int | None, typer.Option(help="replicas per shard of a fleet (default 2)")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray address HOST:PORT (default: `cluster up`'s)")
    ] = None,
) -> None:
    """Serve collections over HTTP (API, /metrics and the web page at /); with
    ``--backend``, each as a fleet of replicated shards (on a Ray cluster, or local)."""
    from ragfleet.serve.factory import ENV, spec_json
    from ragfleet.serve.settings import ServeSettings

    with user_errors():
        if keys is None:
            fail(
                "every route but /healthz and /readyz needs an API key: create one with "
                "`ragfleet keys add NAME --scopes read --file keys.json`, then pass --keys"
            )
        if (certfile is None) != (keyfile is None):
            fail("TLS needs both --certfile and --keyfile")
        fleet = _fleet(backend, replicas, address, workers)
        settings = ServeSettings(
            rate_per_s=rate, burst=burst, batching=batching,
            **({"max_inflight": max_inflight} if max_inflight is not None else {}),
            max_request_chunks=max_request_chunks,
            batch_max=batch_max, batch_wait_ms=batch_wait_ms, answer_dense=answer_dense,
            cors_origins=tuple(cors_origin or ()), trace_exporter=trace_exporter,  # type: ignore[arg-type]
            read_only=read_only or workers > 1, cache_bytes=cache_mb << 20, cache_url=cache_url,
            reranker=reranker, rerank_n=rerank_n, late_weight=late_weight,
        )  # fmt: skip
        os.environ[ENV] = spec_json([d.resolve() for d in dirs], keys.resolve(), settings, fleet)
        from ragfleet.serve.factory import from_env

        app = from_env()  # opened here first, so a bad directory or keys file fails fast
    import uvicorn

    from ragfleet.serve.protocol import guarded_protocol

    tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)} if certfile else {}
    common = {
        "host": host, "port": port, "access_log": False, "log_level": "warning", **tls,
        "http": guarded_protocol(header_timeout, max_connections_per_client),
        "limit_concurrency": max_connections,
    }  # fmt: skip
    if workers == 1:
        _Server(uvicorn.Config(app, **common)).run()  # type: ignore[arg-type]
        return
    for col in app.state.service.collections.values():
        col.close()  # each worker process opens its own
    uvicorn.run("ragfleet.serve.factory:from_env", factory=True, workers=workers, **common)  # type: ignore[arg-type]


def _fleet(backend: str | None, replicas: int | None, address: str | None, workers: int) -> Any:
    """The :class:`~ragfleet.serve.settings.FleetSettings` the flags ask for (``None``: serve
    plain collections); exits with a one-line error on flags that do not go together."""
    from ragfleet.serve.settings import FleetSettings

    if backend is None:
        if replicas is not None or address is not None:
            fail("--replicas and --address serve a fleet: add --backend ray (or local)")
        return None
    if workers > 1:
        fail(
            f"a fleet is served by one process, got --workers {workers}: drop --workers "
            "and scale reads with --replicas"
        )
    fleet = FleetSettings(
        backend,  # type: ignore[arg-type]
        **({"replicas": replicas} if replicas is not None else {}),
        address=address,
    )
    if fleet.backend == "ray":  # before the model loads: a dead cluster fails fast
        from ragfleet.cluster.local_ray import cluster_address

        cluster_address(address)
    return fleet


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):  # type: ignore[misc]
        """uvicorn's server, shutting down gracefully on SIGHUP too (a closed terminal):
        the app's shutdown checkpoints and closes every collection."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = signal.signal(signal.SIGHUP, self.handle_exit)
            try:
                with super().capture_signals():
                    yield
            finally:
                signal.signal(signal.SIGHUP, previous)

    return Server


def _Server(config: Any) -> Any:
    return _server_class()(config)


def keys_add(
    name: Annotated[str, typer.Argument(help="a name for the key (shown in logs)")],
    scopes: Annotated[str, typer.Option(help="comma-separated: read, write, admin")],
    file: Annotated[Path, typer.Option("--file", help="keys file (created if missing)")],
    collections: Annotated[
        str, typer.Option(help="comma-separated collections this key may use (default: all)")
    ] = "",
) -> None:
    """Create an API key; it is printed once — only its salted hash is stored."""
    from ragfleet.serve.auth import KeyStore, new_key, parse_scopes

    with user_errors():
        store = KeyStore.load(file) if file.exists() else KeyStore([])
        names = tuple(c.strip() for c in collections.split(",") if c.strip())
        key, record = new_key(name, parse_scopes(scopes), names)
        store.add(record)
        store.save(file)
    typer.echo(key)
    typer.echo(f"key {name!r} added to {file}; it is shown only this once", err=True)


KeysFile = Annotated[Path, typer.Option("--file", help="keys file")]


def keys_list(
    file: KeysFile, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False
) -> None:
    """List the keys (names, ids, scopes, collections, creation time — never secrets)."""
    from ragfleet.serve.auth import KeyStore

    with user_errors():
        records = KeyStore.load(file).records
    rows = [
        {"name": r.name, "id": r.key_id, "scopes": list(r.scopes),
         "collections": list(r.collections) or ["*"], "created": r.created}
        for r in records
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"keys": rows}, indent=2))
        return
    for r in rows:
        typer.echo(
            f"{r['name']:16} rf_{r['id']}_…  {','.join(r['scopes']):16} "
            f"{','.join(r['collections']):20} {r['created']}"
        )


def keys_revoke(
    name: Annotated[str, typer.Argument(help="the key's name (or id)")], file: KeysFile
) -> None:
    """Remove a key; a running server refuses it within a second or two."""
    from ragfleet.serve.auth import KeyStore

    with user_errors():
        store = KeyStore.load(file)
        record = store.revoke(name)
        store.save(file)
    typer.echo(f"key {record.name!r} (rf_{record.key_id}_…) revoked in {file}", err=True)


def keys_rotate(
    name: Annotated[str, typer.Argument(help="the key's name (or id)")], file: KeysFile
) -> None:
    """Give a key a new secret (same name, scopes and collections); the old one stops
    working. The new key is printed once."""
    from ragfleet.serve.auth import KeyStore

    with user_errors():
        store = KeyStore.load(file)
        key, record = store.rotate(name)
        store.save(file)
    typer.echo(key)
    typer.echo(f"key {record.name!r} rotated in {file}; the old key no longer works", err=True)
