"""``ragfleet feed publish | status`` and ``ragfleet ingest-worker``: a change feed on Redis
Streams (:mod:`ragfleet.feed`)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from ragfleet.cli._common import Dir, print_json, subgroup, user_errors

StreamUrl = Annotated[str, typer.Argument(help="redis://HOST:PORT/DB?stream=NAME")]


def register(app: typer.Typer) -> None:
    feed = subgroup(app, "feed", "A change feed on Redis Streams: publish, status.")
    feed.command("publish")(publish)
    feed.command("status")(status)
    app.command("ingest-worker")(ingest_worker)


def publish(
    stream: StreamUrl,
    source: Annotated[
        Path | None, typer.Argument(help="documents to upsert: BEIR folder, .jsonl, .txt/.md")
    ] = None,
    format: Annotated[str, typer.Option(help="auto|beir|jsonl|text")] = "auto",
    delete_ids: Annotated[
        Path | None, typer.Option("--deletes", help="a file of document ids to delete, one a line")
    ] = None,
    max_lag: Annotated[
        int | None, typer.Option(help="wait while a consumer group lags by more entries")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Publish SOURCE's documents (and --deletes) as entries of the stream."""
    from ragfleet.cli.write_cmds import load_source
    from ragfleet.errors import InputError
    from ragfleet.feed import StreamAddress
    from ragfleet.feed import publish as do_publish
    from ragfleet.feed.publish import Change

    with user_errors():
        address = StreamAddress.parse(stream)
        if source is None and delete_ids is None:
            raise InputError("give SOURCE documents to publish, --deletes FILE, or both")
        changes: list[Change] = []
        if source is not None:
            changes.extend(load_source(source, format, False)[0])
        if delete_ids is not None:
            ids = [x.strip() for x in delete_ids.read_text("utf-8").splitlines() if x.strip()]
            changes.extend(("delete", i) for i in ids)
        report = do_publish(address, changes, max_lag=max_lag)
    if not quiet:
        typer.echo(
            f"{address.stream}: {report.published} entries published in {report.seconds:.1f}s "
            f"(waited {report.waited_s:.1f}s for consumers), last id {report.last_id}",
            err=True,
        )


def status(
    stream: StreamUrl,
    group: Annotated[str, typer.Option(help="consumer group")] = "ragfleet",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Lag (entries and seconds), pending, consumers, dead letters and freshness of a group."""
    from ragfleet.feed import StreamAddress, feed_status

    with user_errors():
        st = feed_status(StreamAddress.parse(stream), group)
    if as_json:
        print_json(st.to_dict())
        return

    def secs(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f} ms"

    typer.echo(
        f"{st.stream} / {st.group}: {st.length:,} entries, lag {st.lag_entries:,} "
        f"({st.lag_s:.1f}s), pending {st.pending:,}, {st.consumers} consumer(s), "
        f"{st.dead_letters:,} dead letter(s); freshness p50 {secs(st.freshness_p50_s)} "
        f"p99 {secs(st.freshness_p99_s)}"
        + (f", {st.throughput:.0f} entries/s" if st.throughput else "")
    )


def ingest_worker(
    collection: Dir,
    stream: Annotated[str, typer.Option(help="redis://HOST:PORT/DB?stream=NAME")],
    group: Annotated[str, typer.Option(help="consumer group")] = "ragfleet",
    workers: Annotated[int, typer.Option(help="consumer threads")] = 1,
    ray: Annotated[
        str | None, typer.Option("--ray", help="write through a Fleet on this Ray address")
    ] = None,
    replicas: Annotated[int, typer.Option(help="replicas per shard (with --ray)")] = 1,
    batch_min: Annotated[int, typer.Option(help="smallest batch (entries)")] = 8,
    batch_max: Annotated[int, typer.Option(help="largest batch (entries)")] = 512,
    batch_target_s: Annotated[float, typer.Option(help="halve the batch above this")] = 1.0,
    claim_idle_s: Annotated[float, typer.Option(help="take over entries idle this long")] = 30.0,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve Prometheus /metrics on this port")
    ] = None,
    wait_lock: Annotated[
        bool, typer.Option(help="wait for another worker's writer lock (a hot standby)")
    ] = True,
    max_seconds: Annotated[float, typer.Option(help="stop after this long (0: never)")] = 0.0,
    name: Annotated[
        str | None,
        typer.Option(help="consumer name prefix, stable across restarts (default: host-pid)"),
    ] = None,
) -> None:
    """Consume the stream into the collection until SIGTERM/SIGINT (then checkpoint, close)."""
    from ragfleet.feed import StreamAddress, WorkerConfig
    from ragfleet.feed.batching import BatchPolicy

    with user_errors():
        address = StreamAddress.parse(stream)
        config = WorkerConfig(
            group, workers=workers, claim_idle_ms=int(claim_idle_s * 1000),
            batch=BatchPolicy(floor=batch_min, ceiling=batch_max, target_s=batch_target_s),
        )  # fmt: skip
        if metrics_port is not None:
            from ragfleet._optional import require

            require("prometheus_client", extra="serve").start_http_server(metrics_port, "127.0.0.1")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: stop.set())
        target = _open_target(collection, ray, replicas, wait_lock, stop)
        if target is None:
            return
        _run(target, collection, address, config, stop, max_seconds, name)


def _open_target(collection: Path, ray: str | None, replicas: int, wait: bool,
                 stop: threading.Event) -> object | None:  # fmt: skip
    from ragfleet.collection import Collection
    from ragfleet.errors import CollectionLockedError
    from ragfleet.fleet import Fleet

    announced = False
    while not stop.is_set():
        try:
            if ray is not None:
                return Fleet.open(collection, backend="ray", address=ray, replicas=replicas,
                                  writable=True)  # fmt: skip
            return Collection.open(collection)
        except CollectionLockedError as e:
            if not wait:
                raise
            if not announced:
                typer.echo(f"{e}; standing by until it is released", err=True)
                announced = True
            stop.wait(0.5)
    return None


def _run(target: object, collection: Path, address: object, config: object,
         stop: threading.Event, max_seconds: float, name: str | None) -> None:  # fmt: skip
    from ragfleet.collection.layout import Layout
    from ragfleet.feed import FeedWorker
    from ragfleet.feed.ledger import Ledger

    ledger = Ledger(Layout.of(collection).feed_ledger(address.stream, config.group))  # type: ignore[attr-defined]
    try:
        worker = FeedWorker(target, address, config, ledger, name=name)  # type: ignore[arg-type]
        worker.start()
        typer.echo(f"{collection}: consuming {address.stream} as {worker.name}", err=True)  # type: ignore[attr-defined]
        t0 = time.monotonic()
        while not stop.wait(0.2):
            if max_seconds and time.monotonic() - t0 >= max_seconds:
                break
        worker.stop()
    finally:
        ledger.close()
        target.close()  # type: ignore[attr-defined]
