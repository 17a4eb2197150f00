"""``ragfleet ingest | search | stats | demo``: build and query a collection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ragfleet.cli._common import Dir, print_json, progress_bar, user_errors
from ragfleet.config import (
    ChunkerConfig,
    CollectionConfig,
    EncoderConfig,
    IndexConfig,
    ShardingConfig,
    TokensConfig,
)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("search")(search)
    app.command("stats")(stats)
    app.command("demo")(demo)


def ingest(
    source: Annotated[Path, typer.Argument(help="BEIR folder, .jsonl file or folder of .txt/.md")],
    collection: Annotated[Path, typer.Option("--collection", "-c", help="collection directory")],
    format: Annotated[str, typer.Option(help="auto|beir|jsonl|text")] = "auto",
    shards: Annotated[int | None, typer.Option(help="number of shards (new collection)")] = None,
    index: Annotated[
        str | None, typer.Option(help="FAISS spec: flat, hnsw32, ivf1024, ...")
    ] = None,
    encoder: Annotated[str | None, typer.Option(help="encoder name (minilm-int8, minilm)")] = None,
    chunker: Annotated[
        str | None, typer.Option(help="window:256:32 | sentence:256 | markdown:256")
    ] = None,
    workers: Annotated[int, typer.Option(help="local embedding processes (0 = in process)")] = 0,
    sync: Annotated[
        bool, typer.Option("--sync", help="also delete documents absent from SOURCE")
    ] = False,
    allow_empty: Annotated[
        bool,
        typer.Option("--allow-empty", help="with --sync: an empty SOURCE deletes everything"),
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="write the valid documents, list the rest")
    ] = False,
    ray: Annotated[bool, typer.Option("--ray", help="embed on a Ray cluster (Ray Data)")] = False,
    address: Annotated[
        str | None, typer.Option(help="Ray address (default: `cluster up`'s)")
    ] = None,
    ray_workers: Annotated[int, typer.Option(help="encoder actors with --ray")] = 2,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    token_vectors: Annotated[
        bool,
        typer.Option(
            "--token-vectors", help="store token vectors for `--reranker late` (new collection)"
        ),
    ] = False,
    token_codec: Annotated[
        str, typer.Option(help="with --token-vectors: int8 | int4 | fp16 | fp32")
    ] = "int8",
    token_pool: Annotated[
        int | None,
        typer.Option(
            help="with --token-vectors: keep ceil(T/F) cluster means of each chunk's T tokens "
            "(default 2; 1 keeps every token)"
        ),
    ] = None,
) -> None:
    """Build a collection from SOURCE, or add to it incrementally if it exists."""
    from ragfleet.cli.write_cmds import load_source, skipped_note
    from ragfleet.collection import Collection
    from ragfleet.errors import EmptyCorpusError

    with user_errors():
        docs, unreadable = load_source(source, format, skip_invalid)
        if sync and not docs and not allow_empty:
            raise EmptyCorpusError(
                f"{source} holds no documents, and --sync would delete every document of "
                f"{collection}; pass --allow-empty if that is what you want"
            )
        if collection.exists():
            _refuse_new_options(shards, index, encoder, chunker, token_vectors or token_pool)
            with Collection.open(collection) as col, progress_bar("embedding", quiet) as bar:
                embedder = (
                    _ray_embedder(collection, col.encoder.name, address, ray_workers)
                    if ray
                    else None
                )
                report = col.upsert(
                    docs, progress=bar, embedder=embedder, skip_invalid=skip_invalid
                )
                stale = sorted(set(col.doc_ids()) - {d.doc_id for d in docs}) if sync else []
                if stale:
                    col.delete(stale)
        else:
            tokens = token_codec if token_vectors else None
            config = _config(shards, index, encoder, chunker, workers, tokens, token_pool)
            embedder = (
                _ray_embedder(collection, config.encoder.name, address, ray_workers)
                if ray
                else None
            )
            with progress_bar("embedding", quiet) as bar:
                built = Collection.build(
                    collection, docs, config, progress=bar, embedder=embedder,
                    skip_invalid=skip_invalid,
                )  # fmt: skip
            with built:
                report_stats = built.stats()
            typer.echo(
                f"built {collection}: {report_stats['documents']} documents, "
                f"{report_stats['chunks']} chunks, {len(report_stats['shards'])} shard(s)"
                + skipped_note(built.last_report, unreadable),
                err=True,
            )
            return
    typer.echo(
        f"{collection}: {report.documents_written} written, "
        f"{report.documents_unchanged} unchanged, "
        f"{len(stale)} deleted, "
        f"{report.chunks_written} chunks in {report.seconds:.1f}s"
        + skipped_note(report, unreadable),
        err=True,
    )


def _ray_embedder(
    collection: Path, encoder_name: str, address: str | None, workers: int
) -> Callable[[list[str]], Any]:
    """Embedding on a Ray Data actor pool; finished blocks are kept beside the collection
    (``.<name>.embed-cache/``) so a rerun after a failure does not re-embed them."""
    from functools import partial

    from ragfleet.cluster.ray_backend import connect
    from ragfleet.cluster.ray_ingest import embed_with_ray

    connect(address)
    cache = collection.with_name(f".{collection.name}.embed-cache")
    return partial(embed_with_ray, encoder_name=encoder_name, workers=workers, cache_dir=cache)


def _refuse_new_options(*options: object) -> None:
    from ragfleet.errors import ConfigError

    if any(o is not None for o in options):
        raise ConfigError(
            "--shards/--index/--encoder/--chunker/--token-vectors/--token-pool: for a new "
            "collection only; this one exists (use `ragfleet reindex` to change its model)"
        )


def _config(
    shards: int | None,
    index: str | None,
    encoder: str | None,
    chunker: str | None,
    workers: int,
    token_codec: str | None = None,
    token_pool: int | None = None,
) -> CollectionConfig:
    """A new collection's config; ``token_codec``: store token vectors packed so, each
    chunk's pooled ``token_pool``-fold."""
    from ragfleet.errors import ConfigError

    base = CollectionConfig()
    if token_pool is not None and not token_codec:
        raise ConfigError("--token-pool applies with --token-vectors")
    pool = {} if token_pool is None else {"pool": token_pool}
    tokens = TokensConfig(enabled=True, codec=token_codec, **pool) if token_codec else base.tokens
    return base.replace(
        tokens=tokens,
        sharding=ShardingConfig(n_shards=1 if shards is None else shards),
        index=IndexConfig(spec=index or base.index.spec),
        encoder=EncoderConfig(name=encoder or base.encoder.name, workers=workers),
        chunker=ChunkerConfig.parse(chunker) if chunker else base.chunker,
    )


def search(
    collection: Dir,
    query: Annotated[str, typer.Argument(help="the query text")],
    k: Annotated[int, typer.Option(help="number of hits")] = 10,
    mode: Annotated[str | None, typer.Option(help="dense | sparse | hybrid")] = None,
    filter: Annotated[
        str | None, typer.Option(help='metadata filter, e.g. {"year": {"gte": 2015}}')
    ] = None,
    unique_docs: Annotated[bool, typer.Option(help="best chunk per document only")] = False,
    timeout_ms: Annotated[
        float | None, typer.Option(help="deadline; late shards are left out")
    ] = None,
    backend: Annotated[str, typer.Option(help="local | ray")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray address (default: `cluster up`'s)")
    ] = None,
    replicas: Annotated[int, typer.Option(help="replicas per shard")] = 1,
    probe_shards: Annotated[
        int | None, typer.Option(help="centroid routing: shards probed")
    ] = None,
    cache_url: Annotated[str | None, typer.Option(help="redis://… shared result cache")] = None,
    oversample: Annotated[
        float | None,
        typer.Option(help="+refine specs: candidates per hit rescored (default: the spec's)"),
    ] = None,
    rescore: Annotated[
        bool | None,
        typer.Option("--rescore/--no-rescore", help="+refine specs: rescore from disk"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Search a collection, in process or on a Ray cluster (``--backend ray``)."""
    from ragfleet.errors import InputError
    from ragfleet.search.request import SearchRequest

    with user_errors():
        if backend not in ("local", "ray"):
            raise InputError(f"--backend must be local or ray, got {backend!r}")
        req = SearchRequest(
            k=k,
            mode=mode,  # type: ignore[arg-type]  # SearchRequest validates it
            filter=filter,
            unique_docs=unique_docs,
            timeout_ms=timeout_ms,
            oversample=oversample,
            rescore=rescore,
        )
        with _retriever(collection, backend, replicas, address, probe_shards) as retriever:
            if cache_url is not None:
                from ragfleet.cache.factory import cache_backend
                from ragfleet.cache.search import CachedSearch

                retriever = CachedSearch(retriever, cache_backend(cache_url))
            res = retriever.search(query, req)
    if as_json:
        print_json(res.to_dict())
        return
    _print_hits(res.to_dict())


@contextmanager
def _retriever(
    collection: Path, backend: str, replicas: int, address: str | None, probe: int | None
) -> Iterator[Any]:
    """A read-only Collection, or a Fleet when replicas, Ray or routing are asked for."""
    if backend == "ray" or replicas != 1 or probe is not None:
        from ragfleet.fleet import Fleet

        with Fleet.open(
            collection, backend="ray" if backend == "ray" else "local", replicas=replicas,
            address=address, probe_shards=probe,
        ) as fleet:  # fmt: skip
            yield fleet
        return
    from ragfleet.collection import Collection

    with Collection.open(collection, read_only=True) as col:
        yield col


def _print_hits(res: dict[str, Any]) -> None:
    for h in res["hits"]:
        title = f" — {h['title']}" if h["title"] else ""
        typer.echo(f"[{h['rank']}] {h['score']:.4f}  {h['chunk_id']}{title}  (shard {h['shard']})")
        text = h["text"].replace("\n", " ")
        typer.echo(f"    {text[:240]}{'…' if len(text) > 240 else ''}")
    t = res["timings_ms"]
    typer.echo("timings_ms: " + "  ".join(f"{k}={v:.2f}" for k, v in t.items()))
    if res["coverage"] < 1.0:
        typer.echo(f"coverage {res['coverage']:.2f}: shards {res['missing_shards']} missing")


def stats(collection: Dir, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a collection's documents, chunks, shards (with the dense index's bytes per vector
    in RAM and on disk) and contract."""
    from ragfleet.collection import Collection

    with user_errors(), Collection.open(collection, read_only=True) as col:
        info = col.stats()
    if as_json:
        print_json(info)
        return
    for key in ("path", "encoder", "fingerprint", "dim", "index", "chunker", "documents", "chunks"):
        typer.echo(f"{key:12} {info[key]}")
    tv = info.get("token_vectors")
    if tv:
        typer.echo(
            f"{'tokens':12} {tv['codec']}: {tv['tokens']} token vectors, {tv['bytes']} bytes, "
            f"{tv['bytes_per_token']:.1f} bytes/token, {tv['bytes_per_chunk']:.0f} bytes/chunk"
        )
    for s in info["shards"]:
        dense = s["dense"]
        on_disk = (
            f" (vectors on disk: {dense['vectors_on_disk']})" if dense["vectors_on_disk"] else ""
        )
        typer.echo(
            f"  shard {s['shard']}: {s['documents']} docs, {s['live_chunks']} chunks, "
            f"{s['tombstones']} tombstones, wal seq {s['wal_seq']}; bytes per vector: "
            f"RAM {dense['ram_bytes_per_vector']:g}, disk {dense['disk_bytes_per_vector']:g}"
            f" (float32: {dense['float32_bytes_per_vector']}){on_disk}"
        )


def demo(
    collection: Dir,
    questions: Annotated[Path, typer.Option(help="a text file, one question per line")],
    budget_ms: Annotated[float, typer.Option(help="latency budget per question")] = 500.0,
) -> None:
    """Answer the demo questions: a cited answer, its sources and a budget line per stage."""
    from ragfleet.cli.ask_cmds import print_response
    from ragfleet.collection import Collection
    from ragfleet.pipeline import Pipeline

    with user_errors(), Collection.open(collection, read_only=True) as col:
        qs = [q.strip() for q in questions.read_text("utf-8").splitlines() if q.strip()]
        pipeline = Pipeline(col)
        pipeline.ask(qs[0], budget_ms=budget_ms)  # warm-up: first call pays lazy initialisation
        for q in qs:
            typer.echo(f"\nQ: {q}")
            print_response(pipeline.ask(q, budget_ms=budget_ms))
    typer.echo(f"\ncollection: {collection} (SQuAD v1.1 dev paragraphs, CC BY-SA 4.0)")
