"""1 vs 4 shards on the bundled demo corpus: identical flat results, and the latency of each.

Builds the demo corpus (2,000 SQuAD paragraphs) as a 1-shard and a 4-shard flat
collection, runs the same questions through both in alternation, checks that the ranked
chunk ids and scores agree, and reports per-stage latency percentiles for each.

    python -m benchmarks.shards_demo [--queries 300] [--modes dense,hybrid]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import DATA, REPO, RESULTS, write_json


def questions(n: int) -> list[str]:
    path = DATA / "squad-v1.1-dev" / "beir" / "queries.jsonl"
    if path.exists():
        with path.open(encoding="utf-8") as f:
            return [json.loads(line)["text"] for _, line in zip(range(n), f, strict=False)]
    return (REPO / "data" / "demo" / "questions.txt").read_text().splitlines()


def main(argv: list[str] | None = None) -> None:
    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, ShardingConfig
    from ragfleet.embed.registry import load_encoder
    from ragfleet.eval.latency import StageLatencies
    from ragfleet.ingest import load_documents

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--modes", default="dense,hybrid")
    args = p.parse_args(argv)
    docs = list(load_documents(REPO / "data" / "demo" / "corpus.jsonl"))
    encoder = load_encoder("minilm-int8")
    tmp = Path(tempfile.mkdtemp())
    cols = {
        n: Collection.build(
            tmp / f"s{n}",
            docs,
            CollectionConfig(sharding=ShardingConfig(n_shards=n)),
            encoder=encoder,
        )
        for n in (1, 4)
    }
    qs = questions(args.queries)
    report: dict[str, Any] = {"documents": len(docs), "queries": len(qs), "modes": {}}
    for mode in args.modes.split(","):
        lat = {n: StageLatencies() for n in cols}
        mismatches = 0
        for q in qs[:10]:  # warm-up
            for col in cols.values():
                col.search(q, k=10, mode=mode)  # type: ignore[arg-type]
        for q in qs:
            res = {n: col.search(q, k=10, mode=mode) for n, col in cols.items()}  # type: ignore[arg-type]
            for n, r in res.items():
                lat[n].add(r.timings_ms)
            a, b = res[1].hits, res[4].hits
            same = [h.chunk_id for h in a] == [h.chunk_id for h in b] and all(
                abs(x.score - y.score) <= 1e-5 for x, y in zip(a, b, strict=True)
            )
            mismatches += not same
        report["modes"][mode] = {
            "identical_results": mismatches == 0,
            "mismatched_queries": mismatches,
            "latency_ms": {str(n): lat[n].summary() for n in cols},
        }
    for col in cols.values():
        col.close()
    shutil.rmtree(tmp)
    write_json("shards_demo", report)
    plot(report, RESULTS / "shards_demo.png")
    for mode, r in report["modes"].items():
        l1, l4 = r["latency_ms"]["1"], r["latency_ms"]["4"]
        print(
            f"{mode}: identical={r['identical_results']}  "
            f"1 shard total p50 {l1['total']['p50']:.2f} "
            f"p99 {l1['total']['p99']:.2f} ms (search p50 {l1['search']['p50']:.2f})  |  4 shards "
            f"total p50 {l4['total']['p50']:.2f} p99 {l4['total']['p99']:.2f} ms "
            f"(search p50 {l4['search']['p50']:.2f})"
        )


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(report["modes"])
    fig, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 3.5), squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        lat = report["modes"][mode]["latency_ms"]
        stages = [s for s in lat["1"] if s != "total"]
        for i, n in enumerate(("1", "4")):
            ax.bar(
                [j + 0.4 * i for j in range(len(stages))],
                [lat[n][s]["p50"] for s in stages],
                0.4,
                label=f"{n} shard(s)",
            )
        ax.set_xticks([j + 0.2 for j in range(len(stages))], stages, rotation=30)
        ax.set_ylabel("p50 ms")
        ax.set_title(f"{mode}: identical={report['modes'][mode]['identical_results']}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
