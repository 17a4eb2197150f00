"""The plot of ``benchmarks/scale.py``: recall, p99, RAM per vector and the QPS ratio to raw
FAISS against n per spec, and (when measured) the tail of K shards against one."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def best_rows(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per family, per n, the measured point of highest recall (skips left out)."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        if "skipped" in r:
            continue
        cur = out.setdefault(r["family"], {}).get(r["n"])
        if cur is None or r["recall@10"] > cur["recall@10"]:
            out[r["family"]][r["n"]] = r
    return {f: [by_n[n] for n in sorted(by_n)] for f, by_n in out.items()}


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shards = report.get("shards", [])
    fig, axes = plt.subplots(1, 5 if shards else 4, figsize=(25 if shards else 20, 4.8))
    single = report.get("single_shard", [])
    for family, pts in best_rows(single).items():
        ns = [p["n"] for p in pts]
        axes[0].plot(ns, [p["recall@10"] for p in pts], "o-", label=family)
        axes[1].plot(ns, [p["p99_ms"] for p in pts], "o-", label=family)
        axes[2].plot(ns, [p["ram_bytes_per_vector"] for p in pts], "o-", label=family)
        worst = [min((r["ratio"] for r in single if r.get("family") == family
                      and r.get("n") == n and "ratio" in r), default=float("nan"))
                 for n in ns]  # fmt: skip
        axes[3].plot(ns, worst, "o-", label=family)
    titles = ("recall@10 (best point)", "p99 ms / query, 1 thread", "RAM bytes / vector",
              "QPS ours / raw FAISS (lowest point)")  # fmt: skip
    for ax, title in zip(axes[:4], titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("vectors in the shard (GMM-sampled MiniLM-like)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].axhline(10, color="grey", ls=":", lw=1)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[3].axhline(0.9, color="grey", ls=":", lw=1)
    axes[0].legend(fontsize=8)
    if shards:
        _shards(axes[4], report)
    load = report["host"].get("loadavg_start", (0, 0, 0))[0]
    fig.suptitle(f"scale: one shard 10k–2M vectors; load average at start {load:.1f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _shards(ax: Any, report: dict[str, Any]) -> None:
    for family in dict.fromkeys(r["family"] for r in report["shards"]):
        pts = [r for r in report["shards"] if r["family"] == family]
        ks = [p["shards"] for p in pts]
        ax.plot(ks, [p["p99_ms"] for p in pts], "o-", label=f"{family} p99")
        ax.plot(ks, [p["p50_ms"] for p in pts], "o--", label=f"{family} p50")
    ax.set_xscale("log", base=2)
    ax.set_title(f"K shards over {report.get('shard_n', '1M')} vectors (thread pool)")
    ax.set_xlabel("shards")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
