"""ANN quality and speed: recall@k against exact search, and a recall/QPS parameter sweep.

The sweep measures :meth:`DenseIndex.search` and raw FAISS (:mod:`ragfleet.eval.raw_faiss`)
on the *same* FAISS index object with the same parameters, in the same run, alternating
the two sides call by call so that machine drift cancels out; ``ratio`` (ragfleet speed /
raw FAISS speed) is the wrapper's cost (1.0 = free). Every index is first written to disk
and read back as a shard holds it after a checkpoint — codes in RAM, the vectors of
``+refine`` specs memory-mapped — and each run reports the bytes per vector in RAM and on
disk. Shared by ``ragfleet bench ann``, ``benchmarks/ann.py`` and ``benchmarks/scale.py``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet._optional import require
from ragfleet.errors import InputError
from ragfleet.eval.raw_faiss import raw_search
from ragfleet.index.dense import DenseIndex, Metric

#: The efSearch (hnsw), nprobe (ivf*) and oversample (+refine) sweeps.
EF_SWEEP = (16, 32, 64, 128, 256, 512)
NPROBE_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256)
OVERSAMPLE_SWEEP = (1.0, 2.0, 4.0, 8.0, 16.0)


def recall_at_k(found: npt.ArrayLike, truth: npt.ArrayLike, k: int) -> float:
    """Mean recall@k of found rows against the exact neighbours.

    ``recall@k = (1/nq) * Σ_q |found_q[:k] ∩ truth_q[:k]| / k``; padding rows (-1) never
    match. ``found`` is ``(nq, >=k)`` with distinct rows per query, ``truth`` ``(nq, >=k)``.
    """
    f, t = np.asarray(found), np.asarray(truth)
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    if f.ndim != 2 or t.ndim != 2 or f.shape[0] != t.shape[0]:
        raise InputError(f"found {f.shape} and truth {t.shape} must be (nq, k) with the same nq")
    if f.shape[1] < k or t.shape[1] < k:
        raise InputError(f"recall@{k} needs >= {k} columns; found {f.shape}, truth {t.shape}")
    if f.shape[0] == 0:
        return 0.0
    hits = (f[:, :k, None] == t[:, None, :k]).any(axis=2) & (f[:, :k] >= 0)
    return float(hits.sum() / (f.shape[0] * k))


def exact_search(
    base: npt.ArrayLike, queries: npt.ArrayLike, k: int, metric: Metric = "l2"
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Exact top-k by a flat index: ``(scores, rows)``, scores higher-is-better as in
    :meth:`DenseIndex.search` (``-||q-x||²`` for l2, ``<q, x>`` for ip)."""
    x = np.ascontiguousarray(base, dtype=np.float32)
    if x.ndim != 2:
        raise InputError(f"base must have shape (n, d), got {x.shape}")
    flat = DenseIndex("flat", int(x.shape[1]), metric)
    flat.add(np.arange(x.shape[0]), x)
    return flat.search(queries, k)


@dataclass(frozen=True)
class AnnRun:
    """One point of the sweep: a spec, its search parameters and what they gave.

    ``ram_bytes_per_vector``: the FAISS index in RAM (codes, ids, graph, centroids) per
    vector; ``disk_bytes_per_vector``: its file plus, for ``+refine`` specs, the
    memory-mapped full-precision vectors. ``p50_ms``/``p99_ms``: per query, ragfleet side.
    """

    spec: str
    params: Mapping[str, float]
    k: int
    recall: float
    qps: float
    raw_faiss_qps: float
    build_s: float
    batch: int
    ram_bytes_per_vector: float = 0.0
    disk_bytes_per_vector: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0

    @property
    def ratio(self) -> float:
        """ragfleet QPS / raw FAISS QPS (1.0: the wrapper is free)."""
        return self.qps / self.raw_faiss_qps

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "params": dict(self.params),
            "k": self.k,
            f"recall@{self.k}": round(self.recall, 5),
            "qps": round(self.qps, 1),
            "raw_faiss_qps": round(self.raw_faiss_qps, 1),
            "ratio": round(self.ratio, 4),
            "p50_ms": round(self.p50_ms, 4),
            "p99_ms": round(self.p99_ms, 4),
            "ram_bytes_per_vector": round(self.ram_bytes_per_vector, 2),
            "disk_bytes_per_vector": round(self.disk_bytes_per_vector, 2),
            "build_s": round(self.build_s, 3),
            "batch": self.batch,
        }


@dataclass(frozen=True)
class SweepConfig:
    """How the sweep measures: ``k``, queries per call (``batch``), and for each point at
    least ``min_pairs`` paired calls and ``min_time_s`` seconds."""

    k: int = 10
    batch: int = 1
    min_time_s: float = 1.0
    min_pairs: int = 200

    def __post_init__(self) -> None:
        if self.k < 1 or self.batch < 1 or self.min_pairs < 1 or self.min_time_s < 0:
            raise InputError(f"k, batch and min_pairs must be >= 1, min_time_s >= 0: {self}")


def default_specs(d: int) -> list[str]:
    """One spec of every family: exact (flat), graph (hnsw32), lists (ivf), and the
    compressed ones — PQ with ``m`` = the largest divisor of ``d`` giving at least 8
    dimensions per sub-quantizer (alone, ``+refine``, after OPQ), 4-bit fast-scan PQ with
    twice the sub-quantizers, scalar quantizers (sq8, sq4+refine, hnsw32,sq8) and binary
    codes (flat and in an HNSW graph; only when 8 divides ``d``), and 1-bit RaBitQ codes
    in fast-scan IVF lists ``+refine``."""
    m = max(m for m in range(1, d + 1) if d % m == 0 and d // m >= 8) if d >= 8 else 1
    specs = ["flat", "hnsw32", "ivf", f"ivf,pq{m}", f"ivf,pq{m}+refine", f"opq,ivf,pq{m}+refine"]
    if d % (2 * m) == 0:
        specs.append(f"ivf,pq{2 * m}x4fs+refine")
    specs += ["sq8", "sq4+refine", "hnsw32,sq8"]
    if d % 8 == 0:
        specs += ["binary", "hnsw32,binary"]
    specs.append("ivf,rabitqfs+refine")
    return specs


def sweep_points(index: DenseIndex) -> list[dict[str, float]]:
    """The search parameters to try: efSearch for hnsw, nprobe for ivf* up to ``nlist / 2``
    (beyond that an IVF scan costs about as much as flat search); ``+refine`` specs sweep
    those at their default oversample, then :data:`OVERSAMPLE_SWEEP` at efSearch 128 /
    nprobe 16."""
    spec = index.dense_spec
    mid: dict[str, float] = {}
    if spec.structure == "flat":
        base: list[dict[str, float]] = [{}]
    elif spec.structure == "hnsw":
        base, mid = [{"ef_search": ef} for ef in EF_SWEEP], {"ef_search": 128}
    else:
        top = max(1, (spec.nlist or 1) // 2)
        base = [{"nprobe": p} for p in NPROBE_SWEEP if p <= top]
        mid = {"nprobe": min(16, top)}
    if index.vectors is None:
        return base
    default = index.default_oversample
    points = [{**p, "oversample": default} for p in base]
    points += [{**mid, "oversample": o} for o in OVERSAMPLE_SWEEP if o != default]
    return points


def build_index(
    spec: str, base: npt.NDArray[np.float32], metric: Metric
) -> tuple[DenseIndex, float]:
    """Train (when needed) and fill an index with all of ``base``; returns it and seconds."""
    t0 = time.perf_counter()
    index = DenseIndex(spec, int(base.shape[1]), metric)
    index.train(base)
    index.add(np.arange(base.shape[0]), base)
    return index, time.perf_counter() - t0


def to_disk(index: DenseIndex) -> tuple[DenseIndex, int]:
    """``index`` as a shard holds it after a checkpoint, and its bytes on disk.

    A ``+refine`` spec is written out and read back: codes in RAM, vectors memory-mapped
    (the file stays mapped after its temporary directory is gone). Other specs keep in RAM
    exactly what their file holds, so they are returned as they are with that size.
    """
    if index.vectors is None:
        return index, index.ram_bytes()
    with tempfile.TemporaryDirectory(prefix="ragfleet-ann-") as tmp:
        dense, vectors = Path(tmp) / "dense.000001.faiss", Path(tmp) / "vectors-0.000001.npy"
        index.save(dense)
        index.vectors.save(vectors)
        loaded = DenseIndex.load(dense, index.spec, index.metric, vectors=[("vectors-0", vectors)])
        return loaded, dense.stat().st_size + vectors.stat().st_size


def paired_times(
    a: Callable[[npt.NDArray[np.float32]], object],
    b: Callable[[npt.NDArray[np.float32]], object],
    batches: Sequence[npt.NDArray[np.float32]],
    min_calls: int,
    min_time_s: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Seconds per query of ``a`` and of ``b`` over at least ``min_calls`` pairs of calls
    and ``min_time_s`` seconds.

    Pair ``i`` runs ``a`` and ``b`` on the two batches ``2i`` and ``2i + 1`` (swapped
    every other pass over the batches), alternating which goes first: both sides see the
    same queries and the same machine load, and neither finds its query's data already
    in the CPU caches, as it would right after the other side searched that query.
    """
    if not batches:
        raise InputError("no queries to time")
    ta: list[float] = []
    tb: list[float] = []
    clock = time.perf_counter
    start = clock()
    while len(ta) < min_calls or clock() - start < min_time_s:
        i, n = len(ta), len(batches)
        j = 2 * i + (2 * i // n) % 2
        xa, xb = batches[j % n], batches[(j + 1) % n]
        sides = [(a, xa, ta), (b, xb, tb)]
        for run, x, times in sides[::-1] if i % 2 else sides:
            t0 = clock()
            run(x)
            times.append((clock() - t0) / x.shape[0])
    return np.asarray(ta), np.asarray(tb)


def _ints(params: Mapping[str, float]) -> tuple[int | None, int | None]:
    ef, nprobe = params.get("ef_search"), params.get("nprobe")
    return (None if ef is None else int(ef)), (None if nprobe is None else int(nprobe))


def compare_qps(
    index: DenseIndex,
    params: Mapping[str, float],
    queries: npt.NDArray[np.float32],
    cfg: SweepConfig,
    base: npt.NDArray[np.float32] | None = None,
) -> tuple[float, float, npt.NDArray[np.float64]]:
    """QPS of ragfleet and of raw FAISS on the same index with the same parameters, and
    ragfleet's seconds per query of every timed call.

    Calls alternate one by one between the two sides, so both see the same machine load.
    On a busy machine a preempted call costs a whole time slice, hence medians:
    ``qps = 1 / median(seconds per query)`` for each side. ``base`` (the float32 vectors)
    is needed by the raw side of ``+refine`` specs.
    """
    if index.vectors is not None and base is None:
        raise InputError(f"the raw FAISS side of {index.spec} needs the base vectors")
    batches = [queries[i : i + cfg.batch] for i in range(0, queries.shape[0], cfg.batch)]
    k, (ef, nprobe) = cfg.k, _ints(params)
    oversample = params.get("oversample")
    raw = raw_search(index, params, k, base if base is not None else queries)

    def ours(x: npt.NDArray[np.float32]) -> object:
        return index.search(x, k, ef_search=ef, nprobe=nprobe, oversample=oversample)

    t_ours, t_raw = paired_times(ours, raw, batches, cfg.min_pairs, cfg.min_time_s)
    return 1.0 / float(np.median(t_ours)), 1.0 / float(np.median(t_raw)), t_ours


def measure(
    index: DenseIndex,
    params: Mapping[str, float],
    base: npt.NDArray[np.float32],
    queries: npt.NDArray[np.float32],
    truth: npt.NDArray[np.int64],
    cfg: SweepConfig,
) -> tuple[float, float, float, npt.NDArray[np.float64]]:
    """``(recall@k, qps, raw FAISS qps, seconds per query)`` of one sweep point."""
    ef, nprobe = _ints(params)
    oversample = params.get("oversample")
    _, rows = index.search(queries, cfg.k, ef_search=ef, nprobe=nprobe, oversample=oversample)
    qps, raw_qps, times = compare_qps(index, params, queries, cfg, base)
    return recall_at_k(rows, truth, cfg.k), qps, raw_qps, times


def run_sweep(
    base: npt.NDArray[np.float32],
    queries: npt.NDArray[np.float32],
    truth: npt.NDArray[np.int64],
    specs: Sequence[str],
    metric: Metric,
    cfg: SweepConfig,
    on_run: Callable[[AnnRun], None] | None = None,
) -> list[AnnRun]:
    """Build each spec once (and put it on disk as a shard would), then measure recall@k,
    QPS, latency and bytes per vector at every sweep point."""
    runs: list[AnnRun] = []
    n = max(1, int(base.shape[0]))
    for spec in specs:
        built, build_s = build_index(spec, base, metric)
        index, disk = to_disk(built)
        ram = index.ram_bytes()
        for params in sweep_points(index):
            recall, qps, raw_qps, times = measure(index, params, base, queries, truth, cfg)
            run = AnnRun(
                index.spec, params, cfg.k, recall, qps, raw_qps, build_s, cfg.batch,
                ram_bytes_per_vector=ram / n, disk_bytes_per_vector=disk / n,
                p50_ms=1e3 * float(np.percentile(times, 50)),
                p99_ms=1e3 * float(np.percentile(times, 99)),
            )  # fmt: skip
            runs.append(run)
            if on_run is not None:
                on_run(run)
    return runs


def plot_pareto(runs: Sequence[AnnRun], path: str | Path, title: str = "") -> None:
    """Recall@k (x) against QPS (y, log) per spec, ragfleet solid and raw FAISS dashed; the
    legend gives each spec's RAM bytes per vector."""
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "eval")
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for spec in dict.fromkeys(r.spec for r in runs):
        pts = sorted((r for r in runs if r.spec == spec), key=lambda r: r.recall)
        label = f"{spec} ({pts[0].ram_bytes_per_vector:.0f} B/vec RAM)"
        line = ax.plot([r.recall for r in pts], [r.qps for r in pts], "o-", ms=3, label=label)[0]
        ax.plot(
            [r.recall for r in pts],
            [r.raw_faiss_qps for r in pts],
            "x--",
            alpha=0.4,
            color=line.get_color(),
        )
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{runs[0].k if runs else 10} (dashed: raw FAISS)")
    ax.set_ylabel("queries per second")
    ax.set_title(title or "recall vs QPS")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
