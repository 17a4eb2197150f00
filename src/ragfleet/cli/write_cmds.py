"""``ragfleet upsert | delete | compact | reindex | generations``: change a collection."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ragfleet.cli._common import Dir, print_json, progress_bar, user_errors


def register(app: typer.Typer) -> None:
    app.command("upsert")(upsert)
    app.command("delete")(delete)
    app.command("compact")(compact)
    app.command("reindex")(reindex)
    app.command("reshard")(reshard)
    app.command("generations")(generations)


def load_source(
    source: Path, format: str, skip_invalid: bool
) -> tuple[list[Any], list[tuple[str, str]]]:
    """The documents of SOURCE, and with ``skip_invalid`` the ``(where, why)`` of each
    record that could not be read (skipped instead of ending the command)."""
    from ragfleet.errors import InvalidRecordError
    from ragfleet.ingest import load_documents

    unreadable: list[tuple[str, str]] = []
    sink = (lambda where, why: unreadable.append((where, why))) if skip_invalid else None
    try:
        return list(load_documents(source, format=format, on_invalid=sink)), unreadable
    except InvalidRecordError as e:
        raise InvalidRecordError(f"{e} (--skip-invalid skips such records and lists them)") from e


def skipped_note(report: Any, unreadable: list[tuple[str, str]], shown: int = 5) -> str:
    """``"; 2 skipped: …; 1 unreadable record(s) skipped: …"`` for the summary line."""
    parts = [report.skipped_summary()] if report is not None else []
    if unreadable:
        listed = ", ".join(f"{w} ({why})" for w, why in unreadable[:shown])
        more = f", and {len(unreadable) - shown} more" if len(unreadable) > shown else ""
        parts.append(f"{len(unreadable)} unreadable record(s) skipped: {listed}{more}")
    text = "; ".join(p for p in parts if p)
    return f"; {text}" if text else ""


def upsert(
    collection: Dir,
    source: Annotated[Path, typer.Argument(help="BEIR folder, .jsonl file or folder of .txt/.md")],
    format: Annotated[str, typer.Option(help="auto|beir|jsonl|text")] = "auto",
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="write the valid documents, list the rest")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Insert or replace the documents of SOURCE (unchanged ones are skipped)."""
    from ragfleet.collection import Collection

    with user_errors():
        docs, unreadable = load_source(source, format, skip_invalid)
        with Collection.open(collection) as col, progress_bar("embedding", quiet) as bar:
            report = col.upsert(docs, progress=bar, skip_invalid=skip_invalid)
    typer.echo(
        f"{collection}: {report.documents_written} written, {report.documents_unchanged} "
        f"unchanged, {report.chunks_written} chunks in {report.seconds:.1f}s"
        + skipped_note(report, unreadable),
        err=True,
    )


def delete(
    collection: Dir,
    ids: Annotated[str | None, typer.Option(help="comma-separated document ids")] = None,
    ids_file: Annotated[
        Path | None, typer.Option(help="a file with one document id a line")
    ] = None,
) -> None:
    """Delete documents (all their chunks) by id."""
    from ragfleet.collection import Collection
    from ragfleet.errors import InputError

    with user_errors():
        wanted = [i.strip() for i in (ids or "").split(",") if i.strip()]
        if ids_file is not None:
            try:
                lines = ids_file.read_text("utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise InputError(f"cannot read --ids-file {ids_file}: {e}") from e
            wanted += [line.strip() for line in lines if line.strip()]
        if not wanted:
            raise InputError("give the documents to delete with --ids a,b or --ids-file FILE")
        with Collection.open(collection) as col:
            existed = col.delete(sorted(set(wanted)))
    typer.echo(f"{collection}: deleted {existed} of {len(set(wanted))} document(s)", err=True)


def compact(
    collection: Dir,
    threshold: Annotated[
        float, typer.Option(help="rebuild shards whose tombstone ratio is at least this")
    ] = 0.2,
) -> None:
    """Rebuild shards with many tombstones and reclaim their disk space."""
    from ragfleet.collection import Collection

    with user_errors(), Collection.open(collection) as col:
        done = col.compact(threshold)
    typer.echo(f"{collection}: compacted shard(s) {done or 'none'}", err=True)


def reindex(
    collection: Dir,
    encoder: Annotated[str, typer.Option(help="the new encoder (minilm-int8, minilm)")],
) -> None:
    """Re-embed the collection under a new encoder in a new generation, verify, swap."""
    from ragfleet.collection.generations import reindex as run

    with user_errors():
        report = run(collection, encoder)
    typer.echo(
        f"{collection}: {report.generation} is current ({report.documents} documents, "
        f"{report.chunks} chunks, {report.documents_embedded} embedded in "
        f"{report.seconds:.1f}s)",
        err=True,
    )


def reshard(
    collection: Dir,
    shards: Annotated[int, typer.Option(help="the new number of shards")],
    placement: Annotated[str, typer.Option(help="hash | centroids")] = "hash",
    out: Annotated[
        Path | None, typer.Option(help="write a new collection here instead of a generation")
    ] = None,
    sample: Annotated[int, typer.Option(help="chunk vectors k-means fits on")] = 20_000,
) -> None:
    """Re-place the documents on N shards (by hash, or by k-means centroids for routing
    with --probe-shards): a new generation swapped in through CURRENT, or --out NEW_DIR."""
    from ragfleet.collection.reshard import reshard as run
    from ragfleet.collection.reshard import reshard_to
    from ragfleet.config import ShardingConfig

    with user_errors():
        ShardingConfig(n_shards=shards, placement=placement)  # type: ignore[arg-type]
        if out is not None:
            n = reshard_to(collection, out, shards, placement, sample_size=sample)  # type: ignore[arg-type]
            typer.echo(f"{out}: {n} documents on {shards} shard(s) by {placement}", err=True)
            return
        report = run(collection, shards, placement, sample_size=sample)  # type: ignore[arg-type]
    typer.echo(
        f"{collection}: {report.generation} is current ({report.documents} documents, "
        f"{report.chunks} chunks on {shards} shard(s) by {placement}, {report.seconds:.1f}s)",
        err=True,
    )


def generations(
    collection: Dir,
    gc: Annotated[bool, typer.Option("--gc", help="remove every generation but the current")] = (
        False
    ),
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the collection's generations (and with --gc remove the old ones)."""
    from ragfleet.collection.generations import gc_generations, list_generations

    with user_errors():
        removed = gc_generations(collection) if gc else []
        gens = list_generations(collection)
    if as_json:
        print_json({"generations": [g.to_dict() for g in gens], "removed": removed})
        return
    for g in gens:
        typer.echo(f"{g.name:12} {g.state:9} {g.encoder:12} {g.fingerprint}")
    if removed:
        typer.echo(f"removed: {', '.join(removed)}", err=True)
