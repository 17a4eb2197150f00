"""``ragfleet eval beir``: quality next to latency on a BEIR folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ragfleet.cli._common import print_json, progress_bar, subgroup, user_errors

MODES = ("dense", "sparse", "hybrid")


def register(app: typer.Typer) -> None:
    group = subgroup(app, "eval", "Evaluate retrieval quality and latency.")
    group.command("beir")(beir)


def beir(
    data_dir: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    ],
    collection: Annotated[Path, typer.Option("--collection", "-c", help="collection directory")],
    mode: Annotated[str, typer.Option(help="dense | sparse | hybrid")] = "hybrid",
    k: Annotated[int, typer.Option(help="ranking depth per query")] = 100,
    split: Annotated[str, typer.Option(help="qrels split")] = "test",
    build: Annotated[
        bool, typer.Option(help="build the collection from DATA_DIR if missing")
    ] = False,
    shards: Annotated[int, typer.Option(help="shards, with --build")] = 1,
    index: Annotated[str, typer.Option(help="FAISS spec, with --build")] = "flat",
    encoder: Annotated[str | None, typer.Option(help="encoder, with --build")] = None,
    compare: Annotated[
        str | None, typer.Option(help="comma list of modes, e.g. dense,sparse,hybrid")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    reranker: Annotated[
        str | None, typer.Option(help="late | maxsim | a cross-encoder directory")
    ] = None,
    rerank_n: Annotated[
        int, typer.Option("--rerank-n", help="candidates the reranker re-scores")
    ] = 50,
    token_vectors: Annotated[
        bool, typer.Option("--token-vectors", help="with --build: store token vectors")
    ] = False,
    late_weight: Annotated[
        float | None,
        typer.Option(
            "--late-weight",
            help="late reranker: weight of the first-stage order in [0, 1] (default 0.4; "
            "0: MaxSim alone)",
        ),
    ] = None,
) -> None:
    """Run every test query; report nDCG@10, Recall@100, MRR@10 and latency percentiles
    (per stage, the reranker's included)."""
    from ragfleet.collection import Collection
    from ragfleet.errors import InputError
    from ragfleet.eval.beir import evaluate_beir
    from ragfleet.ingest import load_beir_queries, load_qrels
    from ragfleet.rerank import RerankConfig, load_reranker

    with user_errors():
        modes = [m.strip() for m in compare.split(",")] if compare else [mode]
        bad = [m for m in modes if m not in MODES]
        if bad or k < 10:
            raise InputError(f"modes must be among {MODES} (got {bad}) and --k >= 10 (got {k})")
        queries, qrels = load_beir_queries(data_dir), load_qrels(data_dir, split)
        if rerank_n < 1:
            raise InputError(f"--rerank-n must be >= 1, got {rerank_n}")
        if late_weight is not None and not reranker:
            raise InputError("--late-weight needs --reranker late")
        if build and not collection.exists():
            _build(collection, data_dir, shards, index, encoder, quiet, token_vectors)
        with Collection.open(collection, read_only=True) as col:
            rr = (
                load_reranker(
                    reranker,
                    RerankConfig(candidates=rerank_n),
                    retriever=col,
                    late_weight=late_weight,
                )
                if reranker
                else None
            )
            reports = {
                m: evaluate_beir(col, queries, qrels, mode=m, k=k, reranker=rr).to_dict()  # type: ignore[arg-type]
                for m in modes
            }
    result: dict[str, Any] = reports[modes[0]] if len(modes) == 1 else {"compare": reports}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
        if len(modes) > 1:
            _plot(reports, out.with_suffix(".png"))
    if len(modes) > 1 or not quiet:
        _table(reports)
    if len(modes) == 1 and out is None:
        print_json(result)


def _build(
    collection: Path,
    data_dir: Path,
    shards: int,
    index: str,
    encoder: str | None,
    quiet: bool,
    token_vectors: bool = False,
) -> None:
    from ragfleet.cli.collection_cmds import _config
    from ragfleet.collection import Collection
    from ragfleet.ingest import load_beir_corpus

    config = _config(shards, index, encoder, None, 0, "int8" if token_vectors else None)
    with progress_bar("embedding", quiet) as bar:
        Collection.build(collection, load_beir_corpus(data_dir), config, progress=bar).close()


def _table(reports: dict[str, dict[str, Any]]) -> None:
    typer.echo(
        f"{'mode':8} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    )
    for m, r in reports.items():
        met, lat = r["metrics"], r["latency_ms"]
        typer.echo(
            f"{m:8} {met['ndcg@10']:8.4f} {met['recall@100']:7.4f} {met['mrr@10']:7.4f} "
            f"{lat['p50']:7.2f} {lat['p95']:7.2f} {lat['p99']:7.2f}"
        )


def _plot(reports: dict[str, dict[str, Any]], path: Path) -> None:
    from ragfleet._optional import require

    plt = require("matplotlib.pyplot", "eval")
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, r in reports.items():
        ax.scatter(r["latency_ms"]["p99"], r["metrics"]["ndcg@10"], s=60, label=m)
        ax.annotate(m, (r["latency_ms"]["p99"], r["metrics"]["ndcg@10"]))
    ax.set_xlabel("p99 latency per query (ms)")
    ax.set_ylabel("nDCG@10")
    ax.set_title("quality vs tail latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
