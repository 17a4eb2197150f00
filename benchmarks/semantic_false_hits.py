"""How often would the semantic cache serve a wrong answer? SciFact and SQuAD questions.

Neither query set holds paraphrases: every question is a different request, so the right
outcome for each is a miss, and every semantic hit reuses another question's results.
Queries arrive in a seeded random order through a real :class:`SemanticCache` (cosine on
the int8 MiniLM query embeddings; a hit is not added, a miss is — as in ``CachedSearch``).
For each threshold τ a hit is

* **true** when the matched question has the same gold documents (qrels): the cached
  search results are still the right ones for the new question;
* **false** when its gold documents differ: the cache would return another question's
  documents.

SQuAD also counts hits whose gold *answers* are disjoint: same passage, different answer,
harmless for the result cache, wrong for an answer cache. Reported per τ: hit rate,
false-hit rate (false hits / queries), precision (true / hits), the paraphrase-free miss
rate, and the leave-one-out nearest-neighbour cosine distribution that explains them.

    python -m benchmarks.semantic_false_hits [--quick] [--squad N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet.cache import SemanticCache, normalize_query
from ragfleet.embed.registry import load_encoder
from ragfleet.ingest.beir import load_beir_query_records, load_qrels

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class QuerySet:
    name: str
    texts: list[str]
    gold: list[frozenset[str]]
    answers: list[frozenset[str]] | None  # SQuAD only


def load_set(name: str, root: Path, splits: Sequence[str], n: int | None, seed: int) -> QuerySet:
    """Queries with qrels in ``splits`` (a seeded sample of ``n`` when given)."""
    records = load_beir_query_records(root)
    qrels: dict[str, set[str]] = {}
    for split in splits:
        for qid, rel in load_qrels(root, split).items():
            qrels.setdefault(qid, set()).update(d for d, r in rel.items() if r > 0)
    ids = sorted(q for q in qrels if q in records and qrels[q])
    if n is not None and n < len(ids):
        ids = sorted(np.random.default_rng(seed).choice(ids, size=n, replace=False).tolist())
    answers = None
    if all("answers" in records[q]["metadata"] for q in ids):
        answers = [
            frozenset(normalize_query(a) for a in records[q]["metadata"]["answers"]) for q in ids
        ]
    return QuerySet(
        name, [records[q]["text"] for q in ids], [frozenset(qrels[q]) for q in ids], answers
    )


def stream(qs: QuerySet, vectors: npt.NDArray[np.float32], tau: float, seed: int) -> dict[str, Any]:
    """Every query through one SemanticCache at threshold ``tau``; hit/false-hit counts."""
    cache = SemanticCache(vectors.shape[1], threshold=tau, max_entries=len(qs.texts))
    hits = false = answer_false = 0
    examples: dict[str, list[dict[str, Any]]] = {"false": [], "true": []}
    for i in np.random.default_rng(seed).permutation(len(qs.texts)):
        match = cache.lookup(vectors[i], generation=0)
        if match is None:
            cache.add(vectors[i], qs.texts[i], str(i), generation=0)
            continue
        hits += 1
        j = int(match.key)
        wrong = qs.gold[i] != qs.gold[j]
        false += wrong
        shown = examples["false" if wrong else "true"]
        if len(shown) < 5:
            shown.append({"query": qs.texts[i], "matched": qs.texts[j], "cos": match.cosine})
        if qs.answers is not None and not qs.answers[i] & qs.answers[j]:
            answer_false += 1
    n = len(qs.texts)
    out: dict[str, Any] = {
        "threshold": tau,
        "queries": n,
        "hits": hits,
        "hit_rate": hits / n,
        "false_hits": false,
        "false_hit_rate": false / n,
        "precision": (hits - false) / hits if hits else None,
        "paraphrase_free_miss_rate": 1 - hits / n,
        "examples": examples,
    }
    if qs.answers is not None:
        out["answer_false_hits"] = answer_false
        out["answer_false_hit_rate"] = answer_false / n
    return out


def nearest_cosines(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Leave-one-out: each query's cosine with its nearest *other* query (exact, blocked)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    best = np.empty(len(unit), dtype=np.float32)
    for s in range(0, len(unit), 1024):
        sims = unit[s : s + 1024] @ unit.T
        np.fill_diagonal(sims[:, s : s + 1024], -np.inf)
        best[s : s + 1024] = sims.max(axis=1)
    return best


def analyse(qs: QuerySet, encoder: Any, thresholds: Sequence[float], seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    vectors = encoder.encode(qs.texts, kind="query")
    embed_s = time.perf_counter() - t0
    nn = nearest_cosines(vectors)
    distinct = len({normalize_query(t) for t in qs.texts})
    return {
        "queries": len(qs.texts),
        "exact_duplicates": len(qs.texts) - distinct,
        "embed_s": embed_s,
        "nn_cosine": {f"p{q}": float(np.percentile(nn, q)) for q in (50, 90, 99, 100)},
        "nn_cosine_at_or_above": {str(t): float(np.mean(nn >= t)) for t in thresholds},
        "by_threshold": [stream(qs, vectors, t, seed) for t in thresholds],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.90, 0.95, 0.98])
    p.add_argument("--scifact", type=int, default=None, help="sample size (default: all)")
    p.add_argument("--squad", type=int, default=None, help="sample size (default: all 10,570)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="300 SciFact, 500 SQuAD questions")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.quick:
        args.scifact, args.squad = 300, 500
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Analyse both query sets; write ``semantic_false_hits.json`` and ``.png``."""
    args = parse_args(argv)
    encoder = load_encoder("minilm-int8")
    sets = {
        "scifact": (DATA / "scifact", ["test", "train"], args.scifact),
        "squad": (DATA / "squad-v1.1-dev" / "beir", ["test"], args.squad),
    }
    report: dict[str, Any] = {"config": {k: str(v) for k, v in vars(args).items()}}
    report["encoder"] = encoder.name
    for name, (root, splits, n) in sets.items():
        if not root.exists():
            report[name] = {"skipped": f"missing {root}"}
            continue
        report[name] = analyse(
            load_set(name, root, splits, n, args.seed), encoder, args.thresholds, args.seed
        )
    write(report, args.out)
    return report


def write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "semantic_false_hits.json").write_text(json.dumps(report, indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = {k: v for k, v in report.items() if isinstance(v, dict) and "by_threshold" in v}
    fig, axes = plt.subplots(1, len(done), figsize=(5.5 * len(done), 4), squeeze=False)
    for ax, (name, res) in zip(axes[0], done.items(), strict=True):
        rows = res["by_threshold"]
        x = np.arange(len(rows))
        series = [("hit_rate", "semantic hit rate"), ("false_hit_rate", "false hits (gold docs)")]
        if "answer_false_hit_rate" in rows[0]:
            series.append(("answer_false_hit_rate", "false hits (answers)"))
        for j, (key, label) in enumerate(series):
            ax.bar(x + (j - 1) * 0.27, [r[key] for r in rows], 0.27, label=label)
        ax.set_xticks(x, [f"τ={r['threshold']}" for r in rows])
        ax.set_ylabel("fraction of queries")
        ax.set_title(f"{name}: {res['queries']} distinct questions (no paraphrases)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "semantic_false_hits.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1:])
