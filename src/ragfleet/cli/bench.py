"""``ragfleet bench ann``: recall@k against QPS for dense index specs, next to raw FAISS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from ragfleet.cli._common import subgroup, user_errors

if TYPE_CHECKING:
    from ragfleet.eval.ann import AnnRun


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command group to ``app``."""
    group = subgroup(app, "bench", "Benchmark ragfleet's building blocks.")
    group.command("ann")(ann)


def ann(
    data_dir: Annotated[Path, typer.Argument(help="folder with base.*, query.*, groundtruth.*")],
    index: Annotated[
        list[str] | None,
        typer.Option(
            "--index",
            help="dense spec, repeatable (default: one of every family, compressed included)",
        ),
    ] = None,
    metric: Annotated[str, typer.Option(help="l2 | ip (must match the groundtruth)")] = "l2",
    k: Annotated[int, typer.Option(help="recall@k and hits per query")] = 10,
    queries: Annotated[int | None, typer.Option(help="use the first N queries")] = None,
    batch: Annotated[int, typer.Option(help="queries per search call")] = 1,
    threads: Annotated[int, typer.Option(help="FAISS OpenMP threads")] = 1,
    min_time: Annotated[float, typer.Option(help="seconds of timing per point")] = 1.0,
    pairs: Annotated[int, typer.Option(help="paired calls per point, at least")] = 200,
    out: Annotated[Path, typer.Option(help="writes results.json and pareto.png here")] = Path(
        "bench-ann"
    ),
) -> None:
    """Sweep efSearch / nprobe / oversample per spec: recall@k, QPS and latency of ragfleet
    and of raw FAISS, and bytes per vector in RAM and on disk."""
    from ragfleet.errors import ConfigError, InputError
    from ragfleet.eval.ann import SweepConfig, default_specs, plot_pareto, run_sweep
    from ragfleet.eval.vecio import load_ann_dataset
    from ragfleet.index.dense import Metric, set_omp_threads
    from ragfleet.index.specs import DenseSpec

    with user_errors():
        if metric not in ("l2", "ip"):
            raise ConfigError(f"--metric must be l2 or ip, got {metric!r}")
        if queries is not None and queries < 1:
            raise InputError(f"--queries must be >= 1, got {queries}")
        cfg = SweepConfig(k=k, batch=batch, min_time_s=min_time, min_pairs=pairs)
        for spec in index or ():
            DenseSpec.parse(spec)
        base, query, truth = load_ann_dataset(data_dir)
        specs = index or default_specs(int(base.shape[1]))
        if truth.shape[1] < k:
            raise InputError(f"groundtruth has {truth.shape[1]} neighbours per query, k={k}")
        query, truth = query[:queries], truth[:queries]
        set_omp_threads(threads)
        out.mkdir(parents=True, exist_ok=True)
        runs = run_sweep(base, query, truth, specs, cast(Metric, metric), cfg, on_run=_echo_run)
    (out / "results.json").write_text(json.dumps([r.to_dict() for r in runs], indent=2) + "\n")
    plot_pareto(runs, out / "pareto.png", title=f"{data_dir.name} (batch {batch}, k={k})")
    typer.echo(f"wrote {out / 'results.json'} and {out / 'pareto.png'}")


def _echo_run(run: AnnRun) -> None:
    typer.echo(
        f"{run.spec:<22} {json.dumps(dict(run.params)):<34} recall@{run.k}={run.recall:<7.4f} "
        f"qps={run.qps:<9.1f} raw={run.raw_faiss_qps:<9.1f} ratio={run.ratio:.3f} "
        f"ram={run.ram_bytes_per_vector:.1f}B disk={run.disk_bytes_per_vector:.1f}B"
    )
