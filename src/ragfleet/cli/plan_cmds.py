"""``ragfleet plan`` (size a deployment) and ``ragfleet bench calibrate`` (measure its inputs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ragfleet.cli._common import subgroup, user_errors

if TYPE_CHECKING:
    from ragfleet.plan.model import Plan


def register(app: typer.Typer) -> None:
    """Add ``plan`` to ``app`` and ``calibrate`` to its ``bench`` group."""
    app.command("plan")(plan_cmd)
    group = subgroup(app, "bench", "Benchmark ragfleet's building blocks.")
    group.command("calibrate")(calibrate_cmd)


def plan_cmd(
    vectors: Annotated[float, typer.Option(help="corpus size in vectors (1e9 is fine)")],
    qps: Annotated[float, typer.Option(help="queries per second at peak")],
    slo_ms: Annotated[float, typer.Option(help="end-to-end p99 budget, ms")],
    dim: Annotated[int, typer.Option(help="vector dimension")] = 384,
    index: Annotated[
        str | None, typer.Option(help="dense spec from the calibration (default: the smallest)")
    ] = None,
    shards: Annotated[int | None, typer.Option(help="fix the shard count")] = None,
    replicas: Annotated[int | None, typer.Option(help="fix the replicas per shard")] = None,
    min_replicas: Annotated[int, typer.Option(help="replicas at least, for availability")] = 2,
    node_ram_gib: Annotated[float, typer.Option(help="RAM per node, GiB")] = 64.0,
    node_cores: Annotated[int, typer.Option(help="cores per node")] = 16,
    ram_fill: Annotated[float, typer.Option(help="share of RAM an index may fill")] = 0.7,
    max_utilisation: Annotated[float, typer.Option(help="target busy share of a core")] = 0.6,
    hedge: Annotated[bool, typer.Option(help="hedge a shard slower than its p95")] = True,
    rtt_p50_ms: Annotated[float, typer.Option(help="node-to-node round trip p50, ms")] = 0.5,
    rtt_p99_ms: Annotated[float, typer.Option(help="node-to-node round trip p99, ms")] = 2.0,
    rerank_candidates: Annotated[int, typer.Option(help="candidates reranked per query")] = 0,
    generate_p50_ms: Annotated[float, typer.Option(help="answer generation p50, ms")] = 0.0,
    generate_p99_ms: Annotated[float, typer.Option(help="answer generation p99, ms")] = 0.0,
    gpu_chunks_per_s: Annotated[float, typer.Option(help="bulk embedding rate of one GPU")] = 1500,
    gpu_hourly: Annotated[float, typer.Option(help="price of a GPU hour")] = 3.0,
    embed_workers: Annotated[int, typer.Option(help="GPUs embedding in parallel")] = 8,
    calibration: Annotated[
        Path | None,
        typer.Option(help="from `ragfleet bench calibrate` (default: the shipped 2-core one)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
    plot: Annotated[
        Path | None, typer.Option(help="write predicted p99 vs corpus size (PNG) here")
    ] = None,
) -> None:
    """Size a deployment: shards, replicas, nodes, RAM, embedding cost, and the p99 per
    stage predicted from measured latency distributions, with the SLO verdict."""
    from ragfleet.plan.calibration import Calibration, default_calibration
    from ragfleet.plan.model import Deployment, Workload, plan

    with user_errors():
        cal = Calibration.load(calibration) if calibration else default_calibration()
        work = Workload(
            vectors=vectors,
            qps=qps,
            slo_ms=slo_ms,
            dim=dim,
            rerank_candidates=rerank_candidates,
            generate_p50_ms=generate_p50_ms,
            generate_p99_ms=generate_p99_ms,
        )
        dep = Deployment(
            index=index,
            shards=shards,
            replicas=replicas,
            min_replicas=min_replicas,
            node_ram_gib=node_ram_gib,
            node_cores=node_cores,
            ram_fill=ram_fill,
            max_utilisation=max_utilisation,
            hedge=hedge,
            rtt_p50_ms=rtt_p50_ms,
            rtt_p99_ms=rtt_p99_ms,
            gpu_chunks_per_s=gpu_chunks_per_s,
            gpu_hourly=gpu_hourly,
            embed_workers=embed_workers,
        )
        result = plan(cal, work, dep)
        if plot is not None:
            from ragfleet.plan.plot import plot_scaling, scaling_curve

            plot_scaling(scaling_curve(cal, work, dep), slo_ms, plot)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(render(result))
    if plot is not None:
        typer.echo(f"wrote {plot}", err=as_json)


def render(p: Plan) -> str:
    """The plan as a short human report."""
    e = p.embedding
    verdict = "meets" if p.meets_slo else "MISSES"
    lines = [
        f"index {p.index}: {p.shards} shards x {p.replicas} replicas "
        f"({p.vectors_per_shard:.3g} vectors, {p.shard_ram_gib:.2f} GiB per shard)",
        f"nodes {p.nodes} ({p.shard_nodes} for shards, {p.replicas_per_node} replicas per node, "
        f"{p.ram_per_node_gib:.1f} GiB each; {p.router_cores:.1f} router + "
        f"{p.encoder_cores:.1f} encoder cores), replica utilisation {p.utilisation:.2f}",
        f"{'stage':<10}{'p50 ms':>10}{'p99 ms':>10}",
        *(f"{s.name:<10}{s.p50_ms:>10.2f}{s.p99_ms:>10.2f}" for s in p.stages),
        f"{'total':<10}{p.p50_ms:>10.2f}{p.p99_ms:>10.2f}",
        f"p99 {p.p99_ms:.1f} ms {verdict} the {p.slo_ms:g} ms SLO; dominant stage: {p.dominant} "
        f"(one shard p99 {p.single_shard_p99_ms:.2f} ms, search p99 unhedged "
        f"{p.unhedged_search_p99_ms:.2f} ms)",
        f"bulk embedding: {e['gpu_hours']:.1f} GPU hours, {e['gpu_cost']:.0f} in cost, "
        f"{e['wall_hours']:.1f} h wall on {e['workers']:.0f} workers "
        f"(or {e['cpu_machine_hours']:.0f} h on this machine's CPUs at batch "
        f"{e['cpu_best_batch']:.0f})",
    ]
    lines += [f"change: {c}" for c in p.changes]
    lines += [f"note: {n}" for n in p.notes]
    return "\n".join(lines)


def calibrate_cmd(
    out: Annotated[Path, typer.Option(help="calibration file to write")] = Path("calibration.json"),
    size: Annotated[
        list[int] | None,
        typer.Option("--size", help="vectors per shard to measure, repeatable (default 20k–200k)"),
    ] = None,
    index: Annotated[
        list[str] | None,
        typer.Option("--index", help="dense spec, repeatable (default flat, hnsw32, IVF-RaBitQ)"),
    ] = None,
    dim: Annotated[int, typer.Option(help="vector dimension")] = 384,
    queries: Annotated[int, typer.Option(help="timed queries per point")] = 300,
    encoder: Annotated[
        str | None, typer.Option(help="encoder to time (--encoder none: skip)")
    ] = "minilm-int8",
    rerank: Annotated[bool, typer.Option(help="time late-interaction reranking")] = True,
    ray: Annotated[bool, typer.Option(help="time a Ray actor round trip (starts Ray)")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress lines")] = False,
) -> None:
    """Measure what `ragfleet plan` needs on this machine: per-shard latency distributions
    against shard size per spec, bytes per vector, scatter overhead, encoder latency and
    throughput per batch size, rerank cost, and the Ray hop. Minutes on 2 cores."""
    from ragfleet.plan.measure import DEFAULT_SIZES, DEFAULT_SPECS, CalibrateConfig, calibrate

    with user_errors():
        cfg = CalibrateConfig(
            sizes=tuple(size or DEFAULT_SIZES),
            specs=tuple(index or DEFAULT_SPECS),
            dim=dim,
            queries=queries,
            encoder=None if encoder in (None, "none") else encoder,
            rerank=rerank,
            ray=ray,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        global _T0
        _T0 = time.monotonic()
        cal = calibrate(cfg, None if quiet else _progress)
        cal.save(out)
    typer.echo(f"wrote {out} in {cal.seconds:.0f} s")


_T0 = time.monotonic()


def _progress(message: str) -> None:
    typer.echo(f"[{time.monotonic() - _T0:6.1f} s] {message}", err=True)
