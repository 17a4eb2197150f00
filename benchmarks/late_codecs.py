"""Which token codec? nDCG@10 of hybrid + late rerank against bytes per token (SciFact).

The token vectors of every hybrid candidate (top 100 of the 300 test queries) and of the
queries are stored once, as float16, in a SciFact collection built with ``--token-codec
fp16`` and cached from it (``--make-cache``); each codec then packs and unpacks the
candidates' vectors, MaxSim reranks the hybrid top ``N`` and trec_eval scores the run.
Codecs: ``fp32`` (the reference), ``fp16``, ``int8`` and ``int4`` (per-token scale,
:mod:`ragfleet.index.tokens_codec`),
ColBERTv2 residuals (``residual-K-bB``: K centroids, b bits per dimension,
:mod:`ragfleet.index.tokens_residual`), a learned projection (``pcaP-int8``: the top P
principal directions of the token vectors, then int8; the query is projected too) and
token pooling (``poolF-int8``: each chunk's T tokens merged into ``⌈T/F⌉`` Ward cluster
means, :mod:`ragfleet.index.tokens_pool`, then int8: F times fewer vectors for MaxSim to
score, so its bytes per token are counted per *original* token). The
recommended default is the smallest codec within 0.005 nDCG@10 of ``fp32`` that needs no
training (a trained codec needs its centroids or projection frozen before the first write).

    python -m benchmarks.late_codecs --make-cache      # once (builds the collection if missing)
    python -m benchmarks.late_codecs                   # the sweep, from the cache

Writes benchmarks/results/late_codecs.json and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, write_json

CACHE = Path("/tmp/ragfleet-bench/late-scifact-cache.npz")
CODECS = [
    "fp32",
    "fp16",
    "int8",
    "int4",
    "residual-256-b2",
    "residual-256-b1",
    "pca128-int8",
    "pca64-int8",
    "pool2-int8",
    "pool3-int8",
    "pool4-int8",
]


def make_cache(data: Path, collection: Path, cache: Path, depth: int = 100) -> None:
    """Hybrid top ``depth`` per test query, and the float16 token vectors of every
    candidate and query, read from a SciFact collection built with ``fp16`` token vectors
    (``ragfleet ingest … --token-vectors --token-codec fp16``): the vectors of the encoder
    pass that embedded each chunk, and of each query's search."""
    from ragfleet.collection import Collection
    from ragfleet.ingest import load_beir_corpus, load_beir_queries, load_qrels
    from ragfleet.search.request import SearchRequest

    qrels = load_qrels(data, "test")
    queries = {q: t for q, t in load_beir_queries(data).items() if q in qrels}
    qids = sorted(queries)
    if not collection.exists():
        from ragfleet.config import CollectionConfig, TokensConfig

        cfg = CollectionConfig(tokens=TokensConfig(enabled=True, codec="fp16"))
        Collection.build(collection, load_beir_corpus(data), cfg).close()
    runs: dict[str, list[tuple[str, str]]] = {}
    where: dict[str, int] = {}
    qblocks = []
    with Collection.open(collection, read_only=True) as col:
        if col.config.tokens.codec != "fp16":
            sys.exit(f"{collection} must store fp16 token vectors (it has {col.config.tokens})")
        req = SearchRequest(k=depth, mode="hybrid", unique_docs=True)
        for q in qids:
            hits = col.search(queries[q], req).hits
            runs[q] = [(h.chunk_id, h.doc_id) for h in hits]
            where.update({h.chunk_id: h.shard for h in hits})
            qblocks.append(col.query_tokens(queries[q]).astype(np.float16))
        ids = sorted(where)
        blocks = []
        for c in ids:
            b = col.shards[where[c]].token_blocks([c])
            blocks.append(b.codes.view("<f2").reshape(-1, col.encoder.dim))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        tokens=np.concatenate(blocks),
        offsets=np.cumsum([0] + [len(b) for b in blocks]),
        qtokens=np.concatenate(qblocks),
        qoffsets=np.cumsum([0] + [len(b) for b in qblocks]),
    )
    meta = {"ids": ids, "qids": qids, "runs": runs}
    Path(str(cache) + ".json").write_text(json.dumps(meta), encoding="utf-8")


class Roundtrip:
    """One codec's pack → unpack of token vectors, its bytes per token, and the query side."""

    def __init__(self, name: str, sample: np.ndarray, d: int) -> None:
        from ragfleet.index.tokens_codec import TokenCodec

        self.name, self.project = name, None
        self.fit_s = 0.0
        self.pool = 1
        t = time.perf_counter()
        if name.startswith("residual"):
            from ragfleet.index.tokens_residual import ResidualCodec

            _, k, b = name.split("-")
            self.residual = ResidualCodec.fit(sample, int(k), int(b[1:]))
            self.bytes_per_token = self.residual.bytes_per_token
        elif name.startswith("pca"):
            p = int(name[3:].split("-")[0])
            _, _, vt = np.linalg.svd(sample.T @ sample)  # uncentred: cosines live there
            self.project = np.ascontiguousarray(vt[:p].T, dtype=np.float32)
            self.codec = TokenCodec("int8", p)
            self.bytes_per_token = self.codec.bytes_per_token
        elif name.startswith("pool"):
            head, codec = name.split("-")
            self.pool = int(head[4:])
            self.codec = TokenCodec(codec, d)
            self.bytes_per_token = self.codec.bytes_per_token / self.pool  # per original token
        else:
            self.codec = TokenCodec(name, d)
            self.bytes_per_token = self.codec.bytes_per_token
        self.fit_s = time.perf_counter() - t

    def docs(self, x: np.ndarray) -> np.ndarray:
        if self.name.startswith("residual"):
            return self.residual.decode(self.residual.encode(x))
        if self.project is not None:
            x = x @ self.project
        return self.codec.decode(self.codec.encode(x))

    def all(self, tokens: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`docs` over every chunk's tokens (pooled first), kept as float16, with
        the new offsets."""
        if self.pool == 1:
            return self._rows(tokens), offsets
        from ragfleet.index.tokens_pool import pool_tokens

        blocks = [
            pool_tokens(tokens[offsets[i] : offsets[i + 1]].astype(np.float32), self.pool)
            for i in range(len(offsets) - 1)
        ]
        pooled = np.concatenate(blocks) if blocks else tokens[:0]
        return self._rows(pooled), np.cumsum([0] + [len(b) for b in blocks])

    def _rows(self, tokens: np.ndarray, step: int = 65536) -> np.ndarray:
        width = self.project.shape[1] if self.project is not None else tokens.shape[1]
        out = np.empty((len(tokens), width), dtype=np.float16)
        for i in range(0, len(tokens), step):
            out[i : i + step] = self.docs(tokens[i : i + step].astype(np.float32))
        return out

    def query(self, q: np.ndarray) -> np.ndarray:
        if self.project is None:
            return q
        from ragfleet.index.tokens_codec import unit_rows

        return unit_rows(q @ self.project)


def sweep(cache: Path, data: Path, depths: list[int]) -> dict[str, Any]:
    from ragfleet.eval.metrics import evaluate
    from ragfleet.index.maxsim import maxsim_batch
    from ragfleet.ingest import load_qrels

    z = np.load(cache)
    meta = json.loads(Path(str(cache) + ".json").read_text(encoding="utf-8"))
    tokens, offsets = z["tokens"], z["offsets"]
    qtok, qoff = z["qtokens"].astype(np.float32), z["qoffsets"]
    row = {c: i for i, c in enumerate(meta["ids"])}
    qrels = load_qrels(data, "test")
    qids, runs = meta["qids"], meta["runs"]
    rng = np.random.default_rng(0)
    sample = tokens[rng.choice(len(tokens), size=min(100_000, len(tokens)), replace=False)]
    sample = sample.astype(np.float32)
    hybrid = {q: {doc: float(len(runs[q]) - i) for i, (_, doc) in enumerate(runs[q])} for q in qids}
    base = evaluate(hybrid, qrels, ["ndcg@10"]).means["ndcg@10"]
    out: dict[str, Any] = {"hybrid_ndcg@10": base, "tokens_cached": len(tokens), "codecs": {}}
    for name in CODECS:
        rt = Roundtrip(name, sample, tokens.shape[1])
        t0 = time.perf_counter()
        decoded, doc_off = rt.all(tokens, offsets)  # every cached chunk packed, unpacked once
        pack_s = time.perf_counter() - t0
        per_depth = {}
        for n in depths:
            run = {}
            for qi, q in enumerate(qids):
                cands = runs[q]
                head = cands[:n]
                blocks = [decoded[doc_off[row[c]] : doc_off[row[c] + 1]] for c, _ in head]
                off = np.cumsum([0] + [len(b) for b in blocks])
                qv = rt.query(qtok[qoff[qi] : qoff[qi + 1]])
                scores = maxsim_batch(qv, np.concatenate(blocks).astype(np.float32), off)
                order = np.argsort(-scores, kind="stable")
                ranked = [head[i][1] for i in order] + [d for _, d in cands[n:]]
                run[q] = {d: float(len(ranked) - i) for i, d in enumerate(ranked)}
            per_depth[str(n)] = evaluate(run, qrels, ["ndcg@10"]).means["ndcg@10"]
        out["codecs"][name] = {
            "bytes_per_token": rt.bytes_per_token,
            "ndcg@10": per_depth,
            "trained": name.startswith(("residual", "pca")),
            "fit_s": rt.fit_s,
            "pool": rt.pool,
            "vectors_per_chunk": len(decoded) / max(1, len(doc_off) - 1),
            "pack_s": pack_s,
        }
        print(f"{name:18} {rt.bytes_per_token:7.1f} B/token  nDCG@10 {per_depth}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "scifact")
    ap.add_argument(
        "--collection", type=Path, default=Path("/tmp/ragfleet-bench/scifact-late-fp16")
    )
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--make-cache", action="store_true")
    ap.add_argument("--depths", default="20,50,100")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default: ours)")
    ap.add_argument(
        "--resummarise", action="store_true", help="recommend again from the last results"
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = RESULTS if args.out is None else args.out
    if args.resummarise:
        report = json.loads((out / "late_codecs.json").read_text(encoding="utf-8"))
        summarise(report)
        write_json("late_codecs", report, out)
        plot(report, out / "late_codecs.png")
        return
    if not args.data.is_dir():
        sys.exit(f"SciFact not found at {args.data}")
    if args.make_cache or not args.cache.exists():
        make_cache(args.data, args.collection, args.cache)
    load0 = os.getloadavg()
    depths = [int(x) for x in args.depths.split(",")]
    report = sweep(args.cache, args.data, depths)
    at = str(50 if 50 in depths else depths[0])  # the rerank depth the codecs are judged at
    report["judged_at_depth"] = int(at)
    ref = report["codecs"]["fp32"]["ndcg@10"][at]
    tokens_per_chunk = None
    meta = json.loads(Path(str(args.cache) + ".json").read_text(encoding="utf-8"))
    tokens_per_chunk = report["tokens_cached"] / len(meta["ids"])
    for c in report["codecs"].values():
        c["delta_vs_fp32"] = c["ndcg@10"][at] - ref
        c["bytes_per_chunk"] = c["bytes_per_token"] * tokens_per_chunk
    report["tokens_per_chunk"] = tokens_per_chunk
    summarise(report)
    report["host"] = {
        "cpu_count": os.cpu_count(),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
    }
    write_json("late_codecs", report, out)
    plot(report, out / "late_codecs.png")


def summarise(report: dict[str, Any]) -> None:
    """The recommended codec (the smallest training-free one within 0.005 nDCG@10 of
    fp32) and the configured default's row, into ``report``."""
    within = {n for n, c in report["codecs"].items() if c["delta_vs_fp32"] >= -0.005}
    # a pooled codec counts only when every smaller factor of its codec is within too: a
    # pass beyond a failing factor is noise of this one corpus, not a safe default
    ok = [
        (c["bytes_per_token"], n)
        for n, c in report["codecs"].items()
        if not c["trained"]
        and n in within
        and all(f"pool{g}-{n.split('-', 1)[1]}" in within for g in range(2, c["pool"]))
    ]
    report["recommended"] = min(ok)[1]
    from ragfleet.config import TokensConfig

    cfg = TokensConfig()
    default = cfg.codec if cfg.pool == 1 else f"pool{cfg.pool}-{cfg.codec}"
    report["default"] = {"codec": default, **report["codecs"][default]}


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, c in report["codecs"].items():
        x, y = c["bytes_per_token"], c["ndcg@10"][str(report["judged_at_depth"])]
        ax.scatter(x, y, color="tab:orange" if c["trained"] else "tab:blue")
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(report["hybrid_ndcg@10"], ls=":", color="grey", label="hybrid (no rerank)")
    ref = report["codecs"]["fp32"]["ndcg@10"][str(report["judged_at_depth"])]
    ax.axhline(ref - 0.005, ls="--", color="red", label="fp32 − 0.005")
    ax.set_xscale("log")
    ax.set_xlabel("bytes per token (log)")
    ax.set_ylabel(f"nDCG@10, hybrid + late rerank of top {report['judged_at_depth']}")
    ax.set_title(f"SciFact test: token codecs (recommended: {report['recommended']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
