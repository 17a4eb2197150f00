"""Predicted p99 against corpus size, sharded and unsharded (the shape of the budget plot
of seed 25, Output 25.1.1): one shard's search grows with its size, K shards pay the
maximum of K latencies and the scatter, and the planner's K keeps the tail flat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ragfleet._optional import require
from ragfleet.plan.calibration import Calibration
from ragfleet.plan.model import Deployment, Workload, plan, predict_p99

SIZES = (1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9, 3e9, 1e10)


def scaling_curve(
    cal: Calibration, work: Workload, dep: Deployment, sizes: Sequence[float] = SIZES
) -> list[dict[str, float]]:
    """Per corpus size: the planner's shards and p99, and p99 with everything on one shard
    (RAM ignored: what a single index would cost in time)."""
    rows = []
    for n in sizes:
        w = replace(work, vectors=n)
        p = plan(cal, w, replace(dep, shards=None))
        rows.append(
            {
                "vectors": n,
                "shards": float(p.shards),
                "nodes": float(p.nodes),
                "sharded_p99_ms": p.p99_ms,
                "unsharded_p99_ms": predict_p99(cal, w, replace(dep, replicas=p.replicas), 1),
            }
        )
    return rows


def plot_scaling(rows: Sequence[dict[str, float]], slo_ms: float, path: str | Path) -> None:
    """Write the curve of :func:`scaling_curve` to ``path`` (PNG)."""
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "eval")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = [r["vectors"] for r in rows]
    ax.plot(xs, [r["unsharded_p99_ms"] for r in rows], "o-", label="one shard")
    ax.plot(xs, [r["sharded_p99_ms"] for r in rows], "s-", label="planned shards")
    for r in rows:
        ax.annotate(f"K={int(r['shards'])}", (r["vectors"], r["sharded_p99_ms"]), fontsize=7,
                    textcoords="offset points", xytext=(0, -11), ha="center")  # fmt: skip
    ax.axhline(slo_ms, color="tab:red", ls="--", lw=1, label=f"SLO {slo_ms:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("vectors in the corpus")
    ax.set_ylabel("predicted end-to-end p99 (ms)")
    ax.set_title("Predicted p99 against corpus size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
