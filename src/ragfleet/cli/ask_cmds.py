"""``ragfleet ask``, ``ragfleet budget``, ``ragfleet reranker train`` and ``ragfleet eval qa``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragfleet.cli._common import Dir, print_json, progress_bar, subgroup, user_errors

if TYPE_CHECKING:
    from ragfleet.pipeline import Pipeline, PipelineResponse

Budget = Annotated[float, typer.Option("--budget-ms", help="latency budget per question (ms)")]
RerankOpt = Annotated[
    str | None,
    typer.Option(help="late (stored token vectors) | maxsim | a cross-encoder directory"),
]
RerankN = Annotated[int, typer.Option("--rerank-n", help="candidates the reranker re-scores")]
LateWeight = Annotated[
    float | None,
    typer.Option(
        "--late-weight",
        help="late reranker: weight of the first-stage order in [0, 1] (default 0.4; "
        "0: MaxSim alone)",
    ),
]
GenOpt = Annotated[str, typer.Option(help="extractive | llama | openai")]
BaseUrl = Annotated[
    str | None, typer.Option(help="OpenAI-compatible server, e.g. http://h:8000/v1")
]
ModelOpt = Annotated[str | None, typer.Option(help="model name (openai) or GGUF path (llama)")]
TopN = Annotated[int, typer.Option(help="passages handed to the generator")]


def register(app: typer.Typer) -> None:
    """Add the commands; ``eval qa`` joins an existing ``eval`` group if there is one."""
    app.command("ask")(ask)
    app.command("budget")(budget)
    reranker = typer.Typer(help="Train rerankers.", no_args_is_help=True)
    reranker.command("train")(train_reranker)
    app.add_typer(reranker, name="reranker")
    subgroup(app, "eval", "Evaluate quality and latency.").command("qa")(eval_qa)


def make_pipeline(
    collection: Any,
    budget_ms: float,
    reranker: str | None,
    generator: str,
    base_url: str | None,
    model: str | None,
    top_n: int = 5,
    rerank_n: int = 20,
    late_weight: float | None = None,
) -> Pipeline:
    """A :class:`~ragfleet.pipeline.Pipeline` from command-line choices; ``rerank_n``
    candidates are retrieved and re-scored when a reranker is chosen (``late_weight``: see
    :func:`~ragfleet.rerank.load_reranker`)."""
    from ragfleet.errors import InputError
    from ragfleet.pipeline import Pipeline, PipelineConfig
    from ragfleet.rerank import RerankConfig, load_reranker

    if rerank_n < 1:
        raise InputError(f"--rerank-n must be >= 1, got {rerank_n}")
    config = PipelineConfig(
        budget_ms=budget_ms, top_n=top_n, k=max(20, rerank_n if reranker else 0),
        rerank_candidates=rerank_n, min_rerank_candidates=min(5, rerank_n),
    )  # fmt: skip
    if late_weight is not None and not reranker:
        raise InputError("--late-weight needs --reranker late")
    rr = (
        load_reranker(
            reranker,
            RerankConfig(candidates=rerank_n),
            retriever=collection,
            late_weight=late_weight,
        )
        if reranker
        else None
    )
    if generator == "extractive":
        from ragfleet.generate.extractive import Extractive

        return Pipeline(collection, rr, Extractive(encoder=collection.encoder), config)
    if generator == "llama":
        from ragfleet.generate.llama import LlamaConfig, LlamaGenerator

        return Pipeline(collection, rr, LlamaGenerator(LlamaConfig(model_path=model)), config)
    if generator == "openai":
        from ragfleet.generate.openai import OpenAIConfig, OpenAIGenerator

        if not base_url or not model:
            raise InputError("--generator openai needs --base-url and --model")
        return Pipeline(collection, rr, OpenAIGenerator(OpenAIConfig(base_url, model)), config)
    raise InputError(f"unknown generator {generator!r}; choose extractive, llama or openai")


def ask(
    collection: Dir,
    question: Annotated[str, typer.Argument(help="the question")],
    budget_ms: Budget = 1000.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the response as JSON")] = False,
    reranker: RerankOpt = None,
    generator: GenOpt = "extractive",
    base_url: BaseUrl = None,
    model: ModelOpt = None,
    top_n: TopN = 5,
    rerank_n: RerankN = 20,
    late_weight: LateWeight = None,
) -> None:
    """Answer QUESTION from COLLECTION with citations, within a latency budget."""
    from ragfleet.collection import Collection

    with user_errors(), Collection.open(collection, read_only=True) as col:
        p = make_pipeline(
            col, budget_ms, reranker, generator, base_url, model, top_n, rerank_n, late_weight
        )
        r = p.ask(question)
    if as_json:
        print_json(r.to_dict())
    else:
        print_response(r)


def print_response(r: PipelineResponse) -> None:
    typer.echo(r.answer.text if r.answer and r.answer.text else "(no answer)")
    if r.answer:
        for c in r.answer.citations:
            h = r.answer.passages[c.n - 1]
            typer.echo(f"  [{c.n}] {h.title or h.doc_id} ({h.chunk_id})")
    typer.echo(f"budget {r.budget_ms:.0f} ms — {'met' if r.slo_met else 'OVER'}:")
    for stage, ms in r.timings_ms.items():
        note = r.degraded.get(stage, "")
        typer.echo(f"  {stage:9} {ms:8.1f} ms {100 * ms / r.budget_ms:5.1f}%  {note}".rstrip())


def budget(
    collection: Dir,
    queries: Annotated[Path, typer.Option(help="one question per line, or a BEIR queries.jsonl")],
    budget_ms: Budget = 1000.0,
    n: Annotated[int | None, typer.Option(help="use the first N questions")] = None,
    reranker: RerankOpt = None,
    generator: GenOpt = "extractive",
    base_url: BaseUrl = None,
    model: ModelOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    rerank_n: RerankN = 20,
    late_weight: LateWeight = None,
) -> None:
    """Measure p50/p95/p99 per stage over QUERIES and compare with the budget."""
    from ragfleet.collection import Collection
    from ragfleet.eval.latency import StageLatencies

    with user_errors():
        qs = read_questions(queries)[:n]
        lat = StageLatencies()
        with (
            Collection.open(collection, read_only=True) as col,
            progress_bar("asking", quiet) as bar,
        ):
            p = make_pipeline(
                col, budget_ms, reranker, generator, base_url, model, 5, rerank_n, late_weight
            )
            for i, q in enumerate(qs, start=1):
                lat.add(p.ask(q).timings_ms)
                bar(i, len(qs))
        table = budget_table(lat.summary(), budget_ms)
    if as_json:
        print_json(table)
        return
    typer.echo(f"{'stage':9} {'p50':>8} {'p95':>8} {'p99':>8} {'share':>7}")
    for stage, row in table["stages"].items():
        typer.echo(
            f"{stage:9} {row['p50']:8.1f} {row['p95']:8.1f} {row['p99']:8.1f} "
            f"{100 * row['share']:6.1f}%"
        )
    typer.echo(
        f"dominant stage: {table['dominant']}; p99 total {table['p99_total']:.1f} ms "
        f"vs budget {budget_ms:.0f} ms: SLO {'ok' if table['slo_ok'] else 'over'}"
    )


def budget_table(summary: dict[str, Any], budget_ms: float) -> dict[str, Any]:
    """Per stage: p50/p95/p99 and p99's share of the budget; the dominant stage (largest
    p99, ``total`` aside) and whether p99 of ``total`` is within the budget."""
    stages = {
        s: {"p50": v["p50"], "p95": v["p95"], "p99": v["p99"], "share": v["p99"] / budget_ms}
        for s, v in summary.items()
    }
    parts = {s: v for s, v in stages.items() if s != "total"}
    p99_total = stages["total"]["p99"] if "total" in stages else 0.0
    return {
        "budget_ms": budget_ms,
        "stages": stages,
        "p99_total": p99_total,
        "dominant": max(parts, key=lambda s: parts[s]["p99"]) if parts else None,
        "slo_ok": p99_total <= budget_ms,
        "n": summary.get("total", {}).get("n", 0),
    }


def read_questions(path: Path) -> list[str]:
    """Lines of a text file, or the ``text`` of each line of a ``.jsonl`` file."""
    from ragfleet.errors import InputError

    if not path.is_file():
        raise InputError(f"query file {path} does not exist")
    lines = [ln.strip() for ln in path.read_text("utf-8").splitlines() if ln.strip()]
    try:
        qs = [json.loads(ln)["text"] for ln in lines] if path.suffix == ".jsonl" else lines
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: each line must be JSON with a 'text' field ({e})") from e
    if not qs:
        raise InputError(f"query file {path} is empty")
    return qs


def train_reranker(
    data: Annotated[Path, typer.Option(help="BEIR folder with qrels/<split>.tsv")],
    out: Annotated[Path, typer.Option(help="model directory to write (resumes if present)")],
    split: Annotated[str, typer.Option(help="qrels split to train on")] = "train",
    collection: Annotated[
        Path | None, typer.Option(help="collection of DATA to mine from (default: built under OUT)")
    ] = None,
    max_queries: Annotated[int, typer.Option(help="training queries at most")] = 800,
    negatives: Annotated[int, typer.Option(help="hard negatives per query")] = 3,
    epochs: Annotated[int, typer.Option()] = 1,
    max_seq: Annotated[int, typer.Option(help="tokens per (query, passage) pair")] = 256,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Fine-tune a cross-encoder from the bundled MiniLM with mined hard negatives."""
    from ragfleet.collection import Collection
    from ragfleet.ingest import load_beir_corpus, load_beir_queries, load_qrels
    from ragfleet.rerank import train as t

    with user_errors():
        config = t.TrainConfig(
            max_queries=max_queries, negatives=negatives, epochs=epochs, max_seq=max_seq
        )
        groups_file = out / "groups.jsonl"
        if groups_file.is_file():
            groups = t.load_groups(groups_file)
        else:
            corpus = {
                d.doc_id: f"{d.title}\n{d.text}" if d.title else d.text
                for d in load_beir_corpus(data)
            }
            col_dir = collection or out / "mining-collection"
            if not col_dir.exists():
                with progress_bar("indexing for mining", quiet) as bar:
                    Collection.build(col_dir, load_beir_corpus(data), progress=bar).close()
            with Collection.open(col_dir, read_only=True) as col:
                groups = t.mine_groups(
                    col, load_beir_queries(data), load_qrels(data, split), corpus, config
                )
            t.save_groups(groups_file, groups)
        meta = {"data": str(data), "split": split, "groups": len(groups)}
        with progress_bar("training", quiet) as bar:
            t.train(groups, out, config, meta=meta, progress=bar)
    typer.echo(f"wrote {out} ({len(groups)} queries); use it with --reranker {out}", err=True)


def eval_qa(
    data_dir: Annotated[Path, typer.Argument(help="BEIR folder with answers in query metadata")],
    collection: Annotated[Path, typer.Option("--collection", "-c", help="collection directory")],
    build: Annotated[
        bool, typer.Option(help="build the collection from DATA_DIR if missing")
    ] = False,
    n: Annotated[int, typer.Option(help="questions (evenly spaced sample)")] = 500,
    k: Annotated[int, typer.Option(help="context recall depth")] = 5,
    budget_ms: Budget = 1000.0,
    reranker: RerankOpt = None,
    generator: GenOpt = "extractive",
    base_url: BaseUrl = None,
    model: ModelOpt = None,
    out: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Context recall@k, exact match, F1, citation precision and latency per stage."""
    from ragfleet.collection import Collection
    from ragfleet.eval.qa import evaluate_qa, load_qa_items
    from ragfleet.ingest import load_beir_corpus

    with user_errors():
        items = load_qa_items(data_dir, n)
        if build and not collection.exists():
            with progress_bar("embedding", quiet) as bar:
                Collection.build(collection, load_beir_corpus(data_dir), progress=bar).close()
        with (
            Collection.open(collection, read_only=True) as col,
            progress_bar("asking", quiet) as bar,
        ):
            p = make_pipeline(col, budget_ms, reranker, generator, base_url, model, max(k, 5))
            report = evaluate_qa(p, items, k=k, progress=bar).to_dict()
    report["settings"].update({"reranker": reranker, "generator": generator})
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    for name, v in report["metrics"].items():
        typer.echo(f"{name:20} {v:.3f}", err=True)
    for stage, s in report["latency_ms"].items():
        typer.echo(
            f"{stage:9} p50 {s['p50']:8.1f}  p95 {s['p95']:8.1f}  p99 {s['p99']:8.1f} ms", err=True
        )
    print_json(report)
