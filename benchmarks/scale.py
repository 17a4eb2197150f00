"""A million vectors per shard: compressed first stage with exact rescoring, 10k to 2M.

The large sets are **not real embeddings**: real MiniLM vectors cost ~80 ms each on this
2-core box, so they are sampled from a Gaussian mixture (:mod:`ragfleet.eval.gmm`, 64
components, Ledoit–Wolf-shrunk covariances) fitted to 11,327 real all-MiniLM-L6-v2 (int8)
embeddings — the SciFact corpus chunks and the SQuAD dev paragraphs, from
``benchmarks/cache`` (``python -m benchmarks.embcache``) — and normalised. Queries are drawn
from the same mixture with another seed; the truth is exact inner-product search. Quality
on real vectors is measured by ``benchmarks/scale_quality.py`` (SciFact, fashion-mnist).

Per spec and size (one shard: a :class:`~ragfleet.index.dense.DenseIndex` written to disk
and read back as a checkpointed shard holds it, codes in RAM and ``+refine`` vectors
memory-mapped): recall@10, QPS and p50/p99 per query (one query per call, FAISS on one
thread), RAM and disk bytes per vector, build time, and raw FAISS on the same index with
the same parameters in the same run (alternating call by call). A spec stops growing when
its build would exceed ``--max-build-s`` (extrapolated from the last size, ``n log n``);
the JSON says where and why. Then ``--shards`` 1, 2, 4, 8 over 1M vectors: each shard an
index over ``n / K`` of them, searched on a thread pool (the embedded scatter) and merged.

    .venv/bin/python -m benchmarks.scale --part single   # results/scale_single.json, .png
    .venv/bin/python -m benchmarks.scale --part shards   # results/scale_shards.json, .png
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RESULTS, write_json
from ragfleet.eval.ann import SweepConfig, measure, to_disk
from ragfleet.eval.gmm import GaussianMixture
from ragfleet.index.dense import DenseIndex, set_omp_threads

Floats = npt.NDArray[np.float32]
CACHES = ("scifact-minilm-int8.npz", "squad-minilm-int8.npz")
SIZES = (10_000, 100_000, 250_000, 1_000_000, 2_000_000)
TRAIN_MAX = 65_536  # IVF/PQ train on a sample: k-means over millions does not fit 2 cores
K = 10


def specs_for(n: int) -> dict[str, str]:
    """Family → spec string at size ``n`` (IVF lists: ``min(1024, 4·√n)``)."""
    nlist = min(1024, int(4 * math.sqrt(n)))
    return {
        "flat": "flat",
        "hnsw32": "hnsw32",
        "ivf": f"ivf{nlist}",
        "ivfpq+refine": f"ivf{nlist},pq48+refine",
        "sq8+refine": "sq8+refine",
        "binary+rescore": "binary",
        "ivf,rabitqfs+refine": f"ivf{nlist},rabitqfs+refine",
        "ivf,rabitq2fs+refine": f"ivf{nlist},rabitq2fs+refine",
    }


#: Families kept at float32 in RAM stop at 1M: 2M more needs 3 GB on a shared 23 GB box,
#: and that size is what the compressed specs are for.
FAMILY_MAX_N = {"flat": 1_000_000, "ivf": 1_000_000}

#: The operating points measured per family (ragfleet's search parameters).
POINTS: dict[str, list[dict[str, float]]] = {
    "flat": [{}],
    "hnsw32": [{"ef_search": 64}, {"ef_search": 128}],
    "ivf": [{"nprobe": 16}, {"nprobe": 64}],
    "ivfpq+refine": [{"nprobe": 32, "oversample": 8.0}, {"nprobe": 64, "oversample": 16.0}],
    "sq8+refine": [{"oversample": 2.0}],
    "binary+rescore": [{"oversample": 16.0}, {"oversample": 32.0}, {"oversample": 64.0}],
    "ivf,rabitqfs+refine": [
        {"nprobe": 16, "oversample": 10.0},
        {"nprobe": 32, "oversample": 10.0},
        {"nprobe": 32, "oversample": 20.0},
        {"nprobe": 64, "oversample": 20.0},
    ],
    "ivf,rabitq2fs+refine": [{"nprobe": 32, "oversample": 5.0}, {"nprobe": 64, "oversample": 5.0}],
}


def mixture(seed: int) -> tuple[GaussianMixture, int]:
    cache = REPO / "benchmarks" / "cache"
    parts = []
    for name in CACHES:
        with np.load(cache / name, allow_pickle=False) as z:
            parts.append(np.asarray(z["vectors"], dtype=np.float32))
    real = np.concatenate(parts)
    return GaussianMixture.fit(real, 64, seed=seed), int(real.shape[0])


def exact_top(base: Floats, queries: Floats, k: int) -> npt.NDArray[np.int64]:
    import faiss

    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    _, ids = flat.search(queries, k)
    return ids.astype(np.int64)


def build(spec: str, base: Floats, seed: int) -> tuple[DenseIndex, float]:
    """Train on at most :data:`TRAIN_MAX` vectors (seeded sample), add all; seconds."""
    t0 = time.perf_counter()
    index = DenseIndex(spec, int(base.shape[1]), "ip")
    if index.needs_training:
        n = base.shape[0]
        pick = np.random.default_rng(seed).choice(n, size=min(n, TRAIN_MAX), replace=False)
        index.train(base[np.sort(pick)])
    for lo in range(0, base.shape[0], 1 << 18):
        hi = min(base.shape[0], lo + (1 << 18))
        index.add(np.arange(lo, hi), base[lo:hi])
    return index, time.perf_counter() - t0


def sampled(gmm: GaussianMixture, n: int, seed: int) -> Floats:
    """``n`` mixture samples, cached in ``/tmp`` (2M take minutes on a busy 2-core box)."""
    path = Path(tempfile.gettempdir()) / f"ragfleet-scale-{n}-{seed}-{gmm.d}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r", allow_pickle=False)
    x = gmm.sample(n, seed=seed)
    np.save(path, x)
    return x


def single_shard(
    args: argparse.Namespace, gmm: GaussianMixture, rows: list[dict[str, Any]], save: Any
) -> None:
    sizes = [n for n in SIZES if n <= args.max_n and n >= args.min_n]
    base_all = sampled(gmm, sizes[-1], args.seed)
    queries = gmm.sample(args.nq, seed=args.seed + 1)
    last_build: dict[str, tuple[int, float]] = {}
    stopped: dict[str, str] = {}
    for n in sizes:
        base = np.ascontiguousarray(base_all[:n])
        truth = exact_top(base, queries, K)
        # timed calls per side: --pairs up to 100k vectors, fewer above (a flat or SQ scan
        # of 1M costs ~1 s per query here); p99 of fewer calls is closer to their maximum
        pairs = max(args.min_pairs, int(args.pairs * min(1.0, 100_000 / n)))
        for family, spec in specs_for(n).items():
            if family in stopped or (args.families and family not in args.families):
                continue
            if n > FAMILY_MAX_N.get(family, n):
                stopped[family] = (
                    f"not built at n={n:,}: float32 in RAM, {n * 4 * gmm.d / 2**30:.1f} GiB "
                    "more on a shared 23 GB machine (the compressed specs are for this size)"
                )
                rows.append({"family": family, "n": n, "skipped": stopped[family]})
                continue
            if family in last_build:
                n0, s0 = last_build[family]
                guess = s0 * (n / n0) * math.log(n) / math.log(n0)
                if guess > args.max_build_s:
                    stopped[family] = (
                        f"not built at n={n:,}: its build would take ~{guess:.0f} s "
                        f"(extrapolated from {s0:.0f} s at n={n0:,}), over --max-build-s "
                        f"{args.max_build_s:.0f} on this shared 2-core machine"
                    )
                    rows.append({"family": family, "n": n, "skipped": stopped[family]})
                    print(stopped[family], flush=True)
                    continue
            built, build_s = build(spec, base, args.seed)
            last_build[family] = (n, build_s)
            index, disk = to_disk(built)
            del built
            ram = index.ram_bytes()
            for params in POINTS[family]:
                calls = timed_calls(index, params, queries, pairs, args.pass_budget_s)
                cfg = SweepConfig(k=K, batch=1, min_time_s=0.0, min_pairs=calls)
                recall, qps, raw_qps, times = measure(index, params, base, queries, truth, cfg)
                row = {
                    "family": family, "spec": index.spec, "n": n, "params": params,
                    f"recall@{K}": round(recall, 4), "qps": round(qps, 1),
                    "raw_faiss_qps": round(raw_qps, 1), "ratio": round(qps / raw_qps, 3),
                    "p50_ms": round(1e3 * float(np.percentile(times, 50)), 3),
                    "p99_ms": round(1e3 * float(np.percentile(times, 99)), 3),
                    "ram_bytes_per_vector": round(ram / n, 2),
                    "disk_bytes_per_vector": round(disk / n, 2),
                    "build_s": round(build_s, 2), "timed_calls": calls,
                    "loadavg": os.getloadavg(),
                }  # fmt: skip
                rows.append(row)
                save()
                print({k: row[k] for k in list(row)[:12]}, flush=True)
            del index


def timed_calls(
    index: DenseIndex, params: dict[str, float], queries: Floats, fewest: int, budget_s: float
) -> int:
    """Timed calls per side for one point: every query on both sides (``len(queries)``
    pairs: :func:`~ragfleet.eval.ann.paired_times` gives side A the even queries and B the
    odd ones on its first pass and swaps them on the second) when that fits in
    ``budget_s``, else ``fewest``. A partial pass times the two sides on different
    queries, and IVF costs differ by query (list sizes), so a ratio of partial passes is
    biased by which queries each side drew."""
    ef, nprobe = params.get("ef_search"), params.get("nprobe")
    kw = {"ef_search": None if ef is None else int(ef), "nprobe": None if nprobe is None
          else int(nprobe), "oversample": params.get("oversample")}  # fmt: skip
    t0 = time.perf_counter()
    for q in queries[:3]:
        index.search(q[None, :], K, **kw)
    per_call = (time.perf_counter() - t0) / 3
    full = int(queries.shape[0])
    return max(fewest, full) if 2 * full * per_call <= budget_s else fewest


def sharded(args: argparse.Namespace, gmm: GaussianMixture) -> list[dict[str, Any]]:
    """K shards over ``--shard-n`` vectors: per-query latency of the scatter + merge."""
    n = args.shard_n
    base = np.ascontiguousarray(sampled(gmm, max(SIZES), args.seed)[:n])
    queries = gmm.sample(args.nq, seed=args.seed + 1)
    truth = exact_top(base, queries, K)
    rows: list[dict[str, Any]] = []
    for family in args.shard_families:
        for n_shards in (1, 2, 4, 8):
            set_omp_threads(1)
            parts = np.array_split(np.arange(n), n_shards)
            shards = []
            t0 = time.perf_counter()
            for rows_of in parts:
                built, _ = build(specs_for(len(rows_of))[family], base[rows_of], args.seed)
                shards.append((to_disk(built)[0], rows_of))
            build_s = time.perf_counter() - t0
            params = POINTS[family][0]
            rows.append(_scatter(family, shards, params, queries, truth, n_shards, build_s))
            print(rows[-1], flush=True)
            del shards
    return rows


def _scatter(
    family: str, shards: list[tuple[DenseIndex, Any]], params: dict[str, float],
    queries: Floats, truth: npt.NDArray[np.int64], n_shards: int, build_s: float,
) -> dict[str, Any]:  # fmt: skip
    ef, nprobe = params.get("ef_search"), params.get("nprobe")
    kw = {"ef_search": None if ef is None else int(ef), "nprobe": None if nprobe is None
          else int(nprobe), "oversample": params.get("oversample")}  # fmt: skip
    shard_ms: list[list[float]] = [[] for _ in shards]

    def one(i: int, x: Floats) -> tuple[Floats, npt.NDArray[np.int64]]:
        t = time.perf_counter()
        s, r = shards[i][0].search(x, K, **kw)
        shard_ms[i].append(1e3 * (time.perf_counter() - t))
        return s, np.where(r >= 0, shards[i][1][np.maximum(r, 0)], -1)

    total_ms, found = [], []
    for index, _ in shards:  # warm: the first touch of a mapped row faults it in
        index.search(queries, K, **kw)
    with ThreadPoolExecutor(n_shards) as pool:
        for q in queries:
            x = q[None, :]
            t = time.perf_counter()
            got = list(pool.map(one, range(n_shards), [x] * n_shards))
            scores = np.concatenate([g[0][0] for g in got])
            ids = np.concatenate([g[1][0] for g in got])
            found.append(ids[np.argsort(-scores, kind="stable")[:K]])
            total_ms.append(1e3 * (time.perf_counter() - t))
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return {
        "family": family, "shards": n_shards, "n": int(sum(len(r) for _, r in shards)),
        "params": params, f"recall@{K}": round(hits / (K * len(queries)), 4),
        "p50_ms": round(float(np.percentile(total_ms, 50)), 3),
        "p99_ms": round(float(np.percentile(total_ms, 99)), 3),
        "shard_p99_ms": [round(float(np.percentile(m, 99)), 3) for m in shard_ms],
        "build_s": round(build_s, 1), "loadavg": os.getloadavg(),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-n", type=int, default=2_000_000)
    p.add_argument("--min-n", type=int, default=0)
    p.add_argument("--families", nargs="*", default=None, help="single-shard families only")
    p.add_argument("--out", default=None, help="results name (default scale_<part>)")
    p.add_argument("--nq", type=int, default=200, help="queries (recall and timing)")
    p.add_argument("--pairs", type=int, default=100, help="timed calls per side, n <= 100k")
    p.add_argument("--min-pairs", type=int, default=25, help="timed calls per side, largest n")
    p.add_argument("--max-build-s", type=float, default=420.0)
    p.add_argument(
        "--pass-budget-s", type=float, default=60.0,
        help="time every query on both sides when that takes at most this long",
    )  # fmt: skip
    p.add_argument("--shard-n", type=int, default=1_000_000)
    p.add_argument("--shard-families", nargs="*", default=["binary+rescore"])
    p.add_argument("--part", choices=["single", "shards", "all"], default="all")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    set_omp_threads(1)  # one core per search, as the per-shard target says
    t0 = time.perf_counter()
    gmm, n_real = mixture(a.seed)
    report: dict[str, Any] = {
        "vectors": (
            f"sampled from a {len(gmm.weights)}-component Gaussian mixture fitted to {n_real} "
            "real all-MiniLM-L6-v2 (int8) embeddings of SciFact and SQuAD, normalised; NOT "
            "real embeddings (quality on real vectors: scale_quality.json)"
        ),
        "d": gmm.d, "k": K, "nq": a.nq, "timed_calls_per_side": (
            f"every query on both sides when that fits in {a.pass_budget_s:.0f} s, else "
            f"{a.pairs} (n <= 100k) down to {a.min_pairs}: each row's timed_calls"
        ),
        "omp_threads": 1, "train_max": TRAIN_MAX,
        "host": {"cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg()},
    }  # fmt: skip
    out = RESULTS / f"{a.out or 'scale' + ('' if a.part == 'all' else '_' + a.part)}.json"
    if a.part in ("single", "all"):
        report["single_shard"] = []
        single_shard(a, gmm, report["single_shard"], lambda: write_json(out.stem, report))
    if a.part in ("shards", "all"):
        report["shards"] = sharded(a, gmm)
    report["shard_n"] = a.shard_n
    report["host"]["loadavg_end"] = os.getloadavg()
    report["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out.stem, report)
    from scale_plot import plot

    plot(report, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
