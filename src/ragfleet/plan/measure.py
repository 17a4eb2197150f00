"""``ragfleet bench calibrate``: measure this machine for the planner, in minutes.

What it measures (each on its own, one query per call, FAISS on one thread):

- **Shard search** per index spec at several shard sizes: per-query latency samples
  (p50, p99, mean, and the distribution's shape at the largest size), recall@10 against
  exact search, bytes per vector in RAM and on disk (``+refine`` specs keep codes in RAM
  and memory-map their vectors, as a shard does after a checkpoint), and the slowdown when
  as many searches run at once as the machine has cores. The vectors are **synthetic**:
  unit-norm points around 256 Gaussian centres (not real embeddings: scan costs do not
  depend on the values, graph and IVF costs depend on the clustering a little).
- **Scatter/merge**: :class:`~ragfleet.cluster.scatter.Scatter` over K = 1…8 tiny shards
  plus :func:`~ragfleet.cluster.merge.merge_topk`, over searching one shard directly;
  fitted as ``fixed + per_shard·K``. The hedge's cost is a thread-pool round trip.
- **Encoder**: batch 1 … 512 document-length texts (the latency–throughput curve bulk
  ingest picks its batch from) and batch-1 query-length texts (the query stage).
- **Rerank**: late interaction over stored token vectors in a real collection of
  synthetic texts, ``fixed + per_candidate·n`` for n = 10 … 100 candidates.
- **Ray** (optional): a round trip to an actor on this node.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet.errors import ConfigError
from ragfleet.plan.calibration import (
    Calibration,
    EncoderCalibration,
    EncoderPoint,
    SpecCalibration,
    SpecPoint,
)
from ragfleet.plan.tails import Dist, Shape, compact

Floats = npt.NDArray[np.float32]
Progress = Callable[[str], None]

DEFAULT_SIZES = (20_000, 50_000, 100_000, 200_000)
DEFAULT_SPECS = ("flat", "hnsw32", "ivf1024,rabitqfs+refine")
#: Search parameters per spec family (the planner predicts these operating points).
PARAMS: dict[str, dict[str, float]] = {
    "hnsw": {"ef_search": 64},
    "ivf": {"nprobe": 32},
}
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CANDIDATES = (10, 25, 50, 100)
TRAIN_MAX = 65_536
K = 10


@dataclass(frozen=True)
class CalibrateConfig:
    """What to measure; the defaults take about five minutes on 2 cores."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    specs: tuple[str, ...] = DEFAULT_SPECS
    dim: int = 384
    queries: int = 300
    encoder: str | None = "minilm-int8"
    batches: tuple[int, ...] = BATCHES
    rerank: bool = True
    ray: bool = False
    seed: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or min(self.sizes) < 1000 or list(self.sizes) != sorted(self.sizes):
            raise ConfigError(
                f"need two or more increasing shard sizes of at least 1000, got {self.sizes}"
            )
        if max(self.sizes) > 20_000_000:
            raise ConfigError(f"shard sizes are capped at 2e7 vectors, got {max(self.sizes)}")
        if not self.specs:
            raise ConfigError("name at least one index spec")
        from ragfleet.embed.registry import encoder_names
        from ragfleet.index.specs import DenseSpec

        for spec in self.specs:
            DenseSpec.parse(spec)
        if self.encoder is not None and self.encoder not in encoder_names():
            raise ConfigError(f"unknown encoder {self.encoder!r}; choose one of {encoder_names()}")
        if not 2 <= self.dim <= 4096:
            raise ConfigError(f"dim must be in [2, 4096], got {self.dim}")
        if not 100 <= self.queries <= 100_000:
            raise ConfigError(f"queries must be in [100, 100000], got {self.queries}")
        if any(b < 1 or b > 4096 for b in self.batches):
            raise ConfigError(f"encoder batch sizes must be in [1, 4096], got {self.batches}")


def params_for(spec: str) -> dict[str, float]:
    """The search parameters calibrated for ``spec`` (by its first component)."""
    head = spec.split(",")[0]
    for prefix, p in PARAMS.items():
        if head.startswith(prefix):
            return dict(p)
    return {}


def search_kwargs(params: dict[str, float]) -> dict[str, Any]:
    """``params`` as :meth:`DenseIndex.search` keywords (beam widths and probes are ints)."""
    return {k: (float(v) if k == "oversample" else int(v)) for k, v in params.items()}


def clustered(n: int, dim: int, seed: int, centres: int = 256) -> Floats:
    """``n`` unit vectors: a random centre (fixed by dim) plus isotropic noise of scale 0.6."""
    c = np.random.default_rng(12345 + dim).standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for lo in range(0, n, step):
        m = min(step, n - lo)
        x = c[rng.integers(0, centres, m)]
        x += rng.standard_normal((m, dim), dtype=np.float32) * np.float32(0.6 / np.sqrt(dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[lo : lo + m] = x
    return out


def _encode_batch(enc: Any, docs: Sequence[str], b: int, i: int) -> object:
    start = (i * b) % len(docs)
    return enc.encode(list(docs[start : start + b]), kind="document")


def _late(col: Any, qs: Sequence[str], hits: Sequence[Any], i: int) -> object:
    return col.late_scores(qs[i], hits[i])


def time_calls(fn: Callable[[int], object], n: int, warmup: int = 10) -> list[float]:
    """Milliseconds of ``fn(i)`` for i in range(n), after ``warmup`` untimed calls."""
    for i in range(min(warmup, n)):
        fn(i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


@dataclass
class SpecRun:
    """Samples of one spec at one size (kept for the validation benchmark)."""

    spec: str
    n: int
    samples_ms: list[float]
    recall: float
    ram_bpv: float
    disk_bpv: float
    build_s: float


def measure_spec(
    spec: str,
    sizes: Sequence[int],
    dim: int,
    queries: Floats,
    seed: int,
    on_point: Callable[[SpecRun], None] | None = None,
    concurrency: int = 0,
) -> tuple[list[SpecRun], float]:
    """Grow one index through ``sizes`` (vectors added in order), measure each size.

    Returns the runs and the slowdown at the largest size with ``concurrency`` threads
    (0: the machine's cores) searching at once, as the ratio of median latencies.
    """
    from ragfleet.eval.ann import exact_search, recall_at_k, to_disk
    from ragfleet.index.dense import DenseIndex, set_omp_threads

    set_omp_threads(1)
    params = search_kwargs(params_for(spec))
    index = DenseIndex(spec, dim, "ip")
    build = 0.0
    if index.needs_training:
        t0 = time.perf_counter()
        index.train(clustered(min(TRAIN_MAX, max(sizes)), dim, seed + 7))
        build += time.perf_counter() - t0
    base = clustered(max(sizes), dim, seed)
    runs: list[SpecRun] = []
    have = 0
    view = index
    for n in sizes:
        t0 = time.perf_counter()
        index.add(np.arange(have, n), base[have:n])
        have = n
        view, disk = to_disk(index)
        build += time.perf_counter() - t0
        truth = exact_search(base[:n], queries, K, "ip")[1]

        def one(i: int, v: Any = view) -> object:
            return v.search(queries[i % len(queries)][None, :], K, **params)

        samples = time_calls(one, len(queries))
        found = np.stack([view.search(q[None, :], K, **params)[1][0] for q in queries])
        run = SpecRun(
            spec, n, samples, recall_at_k(found, truth, K), view.ram_bytes() / n, disk / n, build
        )
        runs.append(run)
        if on_point is not None:
            on_point(run)
    slowdown = _slowdown(view, queries, params, concurrency or os.cpu_count() or 1)
    return runs, slowdown


def _slowdown(index: Any, queries: Floats, params: dict[str, Any], threads: int) -> float:
    """Median latency with ``threads`` searching at once over the median alone."""
    if threads < 2:
        return 1.0
    n = min(len(queries), 200)

    def one(i: int) -> object:
        return index.search(queries[i % len(queries)][None, :], K, **params)

    alone = statistics.median(time_calls(one, n))
    results: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        start.wait()
        results[t] = time_calls(lambda i: one(i + t * 7), n, warmup=0)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    together = statistics.median(x for r in results for x in r)
    return max(together / alone, 1.0)


def spec_calibration(
    spec: str, dim: int, runs: Sequence[SpecRun], slowdown: float
) -> SpecCalibration:
    """A :class:`SpecCalibration` from the runs of :func:`measure_spec`."""
    points = tuple(
        SpecPoint(
            r.n,
            float(np.quantile(r.samples_ms, 0.5)),
            float(np.quantile(r.samples_ms, 0.99)),
            float(np.mean(r.samples_ms)),
        )
        for r in runs
    )
    last = runs[-1]
    return SpecCalibration(
        spec=spec,
        params=params_for(spec),
        dim=dim,
        points=points,
        shape=compact(Shape.from_samples(last.samples_ms)),
        ram_bytes_per_vector=last.ram_bpv,
        disk_bytes_per_vector=last.disk_bpv,
        slowdown=slowdown,
        recall_at_10=last.recall,
    )


def measure_scatter(dim: int, seed: int, calls: int = 400) -> tuple[float, float, float]:
    """``(fixed_ms, per_shard_ms, hedge_ms)``: Scatter + merge over K tiny flat shards
    (K = 1, 2, 4, 8) minus one direct search, least squares in K; the hedge's cost is a
    thread-pool submit-and-result round trip."""
    from ragfleet.cluster.merge import merge_topk
    from ragfleet.cluster.scatter import Scatter
    from ragfleet.index.dense import DenseIndex
    from ragfleet.index.hits import ShardHits

    base = clustered(2000, dim, seed + 3)
    queries = clustered(64, dim, seed + 4)
    index = DenseIndex("flat", dim, "ip")
    index.add(np.arange(len(base)), base)

    def search(shard: int, i: int) -> ShardHits:
        scores, rows = index.search(queries[i % len(queries)][None, :], K)
        ids = np.array([f"{shard}:{r}" for r in rows[0]], dtype=object)
        return ShardHits(shard, scores[0], rows[0], ids)

    direct = statistics.median(time_calls(lambda i: search(0, i), calls))
    ks, over = [], []
    for k in (1, 2, 4, 8):
        scatter = Scatter(k)
        try:

            def fan(i: int, k: int = k, sc: Scatter = scatter) -> object:
                got = sc.gather([(s, s) for s in range(k)], lambda s: search(s, i))
                return merge_topk(list(got.results.values()), K)

            t = statistics.median(time_calls(fan, calls))
        finally:
            scatter.close()
        ks.append(k)
        over.append(max(t - direct, 0.0))
    per_shard, fixed = np.polyfit(np.array(ks, dtype=float), np.array(over), 1)
    with ThreadPoolExecutor(2) as pool:
        hedge = statistics.median(time_calls(lambda i: pool.submit(int, i).result(), calls))
    return max(float(fixed), 0.0), max(float(per_shard), 0.0), hedge


_WORDS: tuple[str, ...] = (
    "the",
    "of",
    "and",
    "a",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "it",
    "an",
    "were",
    "are",
    "which",
    "this",
    "be",
    "or",
    "has",
    "had",
    "not",
    "but",
    "first",
    "their",
    "they",
    "one",
    "after",
    "new",
    "also",
    "its",
    "all",
    "two",
    "been",
    "who",
    "more",
    "other",
    "into",
    "than",
    "time",
    "years",
    "over",
    "only",
    "most",
    "some",
    "when",
    "there",
    "can",
    "would",
    "she",
    "we",
    "study",
    "cells",
    "protein",
    "results",
    "patients",
    "data",
    "model",
    "effect",
    "high",
    "level",
    "group",
    "analysis",
    "increased",
    "expression",
    "system",
    "city",
    "team",
    "season",
    "war",
    "government",
    "university",
    "river",
    "water",
)


def synthetic_texts(n: int, words: int, seed: int) -> list[str]:
    """``n`` texts of ``words`` common English words (token counts like real prose)."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(_WORDS), (n, words))
    return [" ".join(_WORDS[j] for j in row) + "." for row in pick]


def measure_encoder(
    name: str, batches: Sequence[int], seed: int, on_batch: Progress | None = None
) -> EncoderCalibration:
    """Latency and throughput per batch size (document texts of ~150 words), and the
    batch-1 distribution of query texts (~12 words)."""
    from ragfleet.embed.registry import load_encoder

    enc = load_encoder(name)
    docs = synthetic_texts(max(batches) * 2, 150, seed)
    qs = synthetic_texts(300, 12, seed + 1)
    enc.encode(docs[:8], kind="document")
    points = []
    for b in batches:
        calls = max(3, min(50, 2048 // b))
        ms = time_calls(
            functools.partial(_encode_batch, enc, docs, b),
            calls,
            warmup=1,
        )
        p50 = float(np.quantile(ms, 0.5))
        points.append(EncoderPoint(b, p50, float(np.quantile(ms, 0.99)), b / (p50 / 1000.0)))
        if on_batch is not None:
            on_batch(f"encoder batch {b}: {p50:.1f} ms, {b / (p50 / 1000.0):.0f} texts/s")
    q = time_calls(lambda i: enc.encode([qs[i]], kind="query"), len(qs))
    q50, q99 = float(np.quantile(q, 0.5)), float(np.quantile(q, 0.99))
    dim = int(enc.encode(qs[:1], kind="query").shape[1])
    return EncoderCalibration(
        name=name,
        dim=dim,
        threads=_encoder_threads(enc),
        points=tuple(points),
        query_point=EncoderPoint(1, q50, q99, 1000.0 / q50),
        shape=compact(Shape.from_samples(q)),
    )


def _encoder_threads(enc: Any) -> int:
    return int(getattr(enc, "threads", 0) or os.cpu_count() or 1)


def measure_rerank(name: str, seed: int, reps: int = 30) -> tuple[float, float]:
    """``(fixed_ms, per_candidate_ms)`` of late interaction over stored token vectors: a
    real 1-shard collection of 150 synthetic documents, ``late_scores`` of n candidates."""
    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, EncoderConfig, TokensConfig
    from ragfleet.embed.registry import load_encoder
    from ragfleet.types import Document

    texts = synthetic_texts(150, 120, seed + 5)
    docs = [Document(f"d{i}", t) for i, t in enumerate(texts)]
    cfg = CollectionConfig(encoder=EncoderConfig(name=name), tokens=TokensConfig(enabled=True))
    qs = synthetic_texts(reps, 12, seed + 6)
    with tempfile.TemporaryDirectory(prefix="ragfleet-calibrate-") as tmp:
        col = Collection.build(Path(tmp) / "c", docs, cfg, encoder=load_encoder(name))
        try:
            ns, ms = [], []
            for n in CANDIDATES:
                hits = [col.search(q, k=n).hits for q in qs]
                for i, q in enumerate(qs):  # the query's tokens, as the search pass leaves them
                    col.late_scores(q, hits[i][:1])
                t = time_calls(functools.partial(_late, col, qs, hits), reps, 3)
                ns.append(len(hits[0]))
                ms.append(statistics.median(t))
        finally:
            col.close()
    per, fixed = np.polyfit(np.array(ns, dtype=float), np.array(ms), 1)
    return max(float(fixed), 0.0), max(float(per), 0.0)


def measure_ray(calls: int = 300) -> Dist | None:
    """A round trip to a trivial actor on this node (Ray started on loopback), or ``None``
    when Ray is not installed."""
    try:
        import ray
    except ImportError:
        return None
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:

        @ray.remote(num_cpus=0)
        class Echo:
            def ping(self, x: int) -> int:
                return x

        a = Echo.remote()  # type: ignore[attr-defined]
        samples = time_calls(lambda i: ray.get(a.ping.remote(i)), calls, warmup=20)
        return Dist(
            float(np.quantile(samples, 0.5)),
            float(np.quantile(samples, 0.99)),
            compact(Shape.from_samples(samples)),
        )
    finally:
        if started:
            ray.shutdown()


def calibrate(cfg: CalibrateConfig, progress: Progress | None = None) -> Calibration:
    """Measure everything in ``cfg`` (see the module docstring)."""
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    queries = clustered(cfg.queries, cfg.dim, cfg.seed + 1)
    specs = []
    for spec in cfg.specs:
        runs, slow = measure_spec(
            spec,
            cfg.sizes,
            cfg.dim,
            queries,
            cfg.seed,
            on_point=lambda r: say(
                f"{r.spec} n={r.n}: p50 {np.quantile(r.samples_ms, 0.5):.2f} ms, "
                f"p99 {np.quantile(r.samples_ms, 0.99):.2f} ms, recall@10 {r.recall:.3f}"
            ),
        )
        specs.append(spec_calibration(spec, cfg.dim, runs, slow))
        say(f"{spec}: slowdown with every core searching {slow:.2f}")
    fixed, per_shard, hedge = measure_scatter(cfg.dim, cfg.seed)
    say(f"scatter: {fixed:.3f} ms + {per_shard:.3f} ms per shard; hedge {hedge:.3f} ms")
    encoder = None
    rerank = (0.0, 0.0)
    notes = dict(cfg.notes)
    if cfg.encoder is not None:
        encoder = measure_encoder(cfg.encoder, cfg.batches, cfg.seed, say)
        say(f"query embedding: p50 {encoder.query().p50:.2f} ms, p99 {encoder.query().p99:.2f}")
        if cfg.rerank:
            rerank = measure_rerank(cfg.encoder, cfg.seed)
            say(f"late rerank: {rerank[0]:.3f} ms + {rerank[1]:.4f} ms per candidate")
    else:
        notes["encoder"] = "not measured (--no-encoder): plans count query embedding as 0 ms"
    if not cfg.rerank or cfg.encoder is None:
        notes["rerank"] = "not measured: plans count reranking as 0 ms"
    ray = measure_ray() if cfg.ray else None
    if cfg.ray and ray is None:
        notes["ray"] = "Ray is not installed"
    elif ray is not None:
        say(f"ray actor round trip: p50 {ray.p50:.3f} ms, p99 {ray.p99:.3f} ms")
    return Calibration(
        host={
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "python": platform.python_version(),
            "loadavg_start": list(load0),
            "loadavg_end": list(os.getloadavg()),
            "vectors": "synthetic: unit-norm points around 256 Gaussian centres",
            "dim": cfg.dim,
            "queries": cfg.queries,
        },
        specs=tuple(specs),
        encoder=encoder,
        scatter_fixed_ms=fixed,
        scatter_per_shard_ms=per_shard,
        hedge_cost_ms=hedge,
        rerank_fixed_ms=rerank[0],
        rerank_per_candidate_ms=rerank[1],
        ray_hop=ray,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        seconds=time.perf_counter() - t0,
        notes=notes,
    )
