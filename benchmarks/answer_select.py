"""Answer selection on SQuAD v1.1 dev, tuned on one half of the articles, reported on the other.

The articles (a passage id is ``<article>_<n>``) are sorted by name and dealt alternately
into a tuning half and a report half; a question belongs to the half of its gold passage's
article. The hybrid top 5 of every sampled question is retrieved once; then the extractive
generator picks a sentence from them under each setting of the answer-type weight γ
(:mod:`ragfleet.generate.answer_type`), lexical only (no encoder, as ``/ask`` runs by
default). γ is chosen on the tuning half by answer containment; the report half is scored
once, at that γ and at γ = 0 (the previous default), with:

* answer containment — a gold answer is inside the chosen sentence;
* citation precision — the cited passage holds a gold answer;
* span EM / F1 — of ``Answer.short`` (the sentence itself when no span stands out);
* the generate stage's p50 / p99 (ms).

The demo's three questions are reported wherever their articles fall, never tuned on.

    python -m benchmarks.answer_select [--n 600] [--collection DIR]

Writes benchmarks/results/answer_select.json and .png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import DATA, RESULTS, write_json

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
DEMO = (
    "Which NFL team represented the AFC at Super Bowl 50?",
    "Which NFL team won Super Bowl 50?",
    "Who won Super Bowl 50?",
)


def article(doc_id: str) -> str:
    return doc_id.rsplit("_", 1)[0]


def halves(items: list[Any]) -> tuple[list[Any], list[Any]]:
    arts = sorted({article(d) for it in items for d in it.gold_docs})
    tune_arts = set(arts[::2])
    tune = [it for it in items if any(article(d) in tune_arts for d in it.gold_docs)]
    report = [it for it in items if not any(article(d) in tune_arts for d in it.gold_docs)]
    return tune, report


def evaluate(gen: Any, rows: list[tuple[Any, list[Any]]]) -> dict[str, Any]:
    from ragfleet.eval.qa import contains_answer, exact_match, token_f1
    from ragfleet.generate.base import strip_citations

    sums = {"containment": 0.0, "citation_precision": 0.0, "span_em": 0.0, "span_f1": 0.0}
    ms: list[float] = []
    for it, hits in rows:
        t0 = time.perf_counter()
        ans = gen.generate(it.question, hits)
        ms.append((time.perf_counter() - t0) * 1e3)
        sentence = strip_citations(ans.text)
        short = ans.short or sentence
        sums["containment"] += contains_answer(sentence, it.answers)
        cited = [ans.passages[c.n - 1].text for c in ans.citations]
        sums["citation_precision"] += np.mean([contains_answer(t, it.answers) for t in cited])
        sums["span_em"] += exact_match(short, it.answers)
        sums["span_f1"] += token_f1(short, it.answers)
    n = max(len(rows), 1)
    out: dict[str, Any] = {k: v / n for k, v in sums.items()}
    out.update(n=len(rows), generate_p50_ms=float(np.percentile(ms, 50)),
               generate_p99_ms=float(np.percentile(ms, 99)))  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "squad-v1.1-dev" / "beir")
    ap.add_argument("--collection", type=Path, default=Path("/tmp/ragfleet-bench/squad"))
    ap.add_argument("--n", type=int, default=600, help="questions per half")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragfleet.collection import Collection
    from ragfleet.eval.qa import load_qa_items
    from ragfleet.generate.extractive import Extractive, ExtractiveConfig
    from ragfleet.ingest import load_beir_corpus

    if not args.data.is_dir():
        sys.exit(f"SQuAD not found at {args.data}")
    tune_all, report_all = halves(load_qa_items(args.data))
    sample = lambda xs: xs[:: max(1, len(xs) // args.n)][: args.n]  # noqa: E731
    tune, report = sample(tune_all), sample(report_all)
    if not args.collection.exists():
        Collection.build(args.collection, load_beir_corpus(args.data)).close()
    out: dict[str, Any] = {"tune_questions": len(tune), "report_questions": len(report)}
    with Collection.open(args.collection, read_only=True) as col:
        retrieve = lambda xs: [(it, col.search(it.question, k=5).hits) for it in xs]  # noqa: E731
        tune_rows, report_rows = retrieve(tune), retrieve(report)
        sweep = {}
        for w in WEIGHTS:
            gen = Extractive(ExtractiveConfig(type_weight=w))
            sweep[w] = evaluate(gen, tune_rows)
            print(f"tune γ={w}: {sweep[w]}", flush=True)
        best = max(WEIGHTS, key=lambda w: (sweep[w]["containment"], -w))
        out["tune_sweep"] = {str(w): r for w, r in sweep.items()}
        out["chosen_type_weight"] = best
        out["report"] = {
            f"type_weight={w}": evaluate(Extractive(ExtractiveConfig(type_weight=w)), report_rows)
            for w in sorted({0.0, best})
        }
        for name, r in out["report"].items():
            print(f"report {name}: {r}", flush=True)
        demo = Extractive(ExtractiveConfig(type_weight=best))
        out["demo"] = {}
        for q in DEMO:
            ans = demo.generate(q, col.search(q, k=5).hits)
            out["demo"][q] = {"answer": ans.text, "short": ans.short}
            print(f"demo {q!r}: {ans.short!r} | {ans.text}", flush=True)
    write_json("answer_select", out)
    plot(out, RESULTS / "answer_select.png")


def plot(out: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    ws = [float(w) for w in out["tune_sweep"]]
    for m in ("containment", "citation_precision", "span_f1"):
        a.plot(ws, [out["tune_sweep"][str(w)][m] for w in ws], marker="o", label=m)
    a.axhline(0.85, ls=":", color="grey")
    a.axhline(0.90, ls="--", color="red", lw=0.8)
    a.set_xlabel("answer-type weight γ (tuning half)")
    a.legend(fontsize=8)
    names = list(out["report"])
    metrics = ["containment", "citation_precision", "span_f1"]
    for i, n in enumerate(names):
        a_vals = [out["report"][n][m] for m in metrics]
        b.bar([x + 0.4 * i for x in range(len(metrics))], a_vals, width=0.4, label=n)
    b.set_xticks([x + 0.2 for x in range(len(metrics))], metrics, fontsize=8)
    b.set_title("report half of SQuAD dev (held-out articles)")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
