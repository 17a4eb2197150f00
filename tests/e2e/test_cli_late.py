"""``--token-vectors`` and ``--reranker late`` on the command line, with the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragfleet.cli.app import app

runner = CliRunner()
Q = "Which NFL team represented the AFC at Super Bowl 50?"


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BEIR folder: 30 demo paragraphs, 3 queries judged against their paragraph."""
    from tests.conftest import demo_docs

    root = tmp_path_factory.mktemp("beir")
    docs = demo_docs(30)
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text}) + "\n")
    queries = {
        "q1": Q,
        "q2": "Who headlined the halftime show?",
        "q3": "Where was the game played?",
    }
    with (root / "queries.jsonl").open("w", encoding="utf-8") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels").mkdir()
    rows = ["query-id\tcorpus-id\tscore"] + [f"q{i}\t{docs[i].doc_id}\t1" for i in (1, 2, 3)]
    (root / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def late_col(beir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    col = tmp_path_factory.mktemp("late") / "col"
    res = runner.invoke(
        app, ["ingest", str(beir), "--collection", str(col), "--token-vectors", "-q"]
    )
    assert res.exit_code == 0, res.output
    return col


def test_stats_report_bytes_per_token_and_chunk(late_col: Path) -> None:
    res = runner.invoke(app, ["stats", str(late_col), "--json"])
    assert res.exit_code == 0, res.output
    tv = json.loads(res.stdout)["token_vectors"]
    assert tv["codec"] == "int8" and tv["bytes_per_token"] == 386.0 and tv["bytes_per_chunk"] > 0
    text = runner.invoke(app, ["stats", str(late_col)]).stdout
    assert "bytes/token" in text and "bytes/chunk" in text


def test_ask_reranks_late(late_col: Path) -> None:
    res = runner.invoke(
        app, ["ask", str(late_col), Q, "--reranker", "late", "--rerank-n", "10", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["timings_ms"]["rerank"] > 0
    assert all("rerank" in h["scores"] for h in out["hits"])


def test_budget_plans_the_late_stage(late_col: Path, tmp_path: Path) -> None:
    qs = tmp_path / "qs.txt"
    qs.write_text(f"{Q}\nWho won?\nWhere was it played?\n", encoding="utf-8")
    res = runner.invoke(
        app,
        ["budget", str(late_col), "--queries", str(qs), "--reranker", "late", "--rerank-n", "10",
         "--json", "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["stages"]["rerank"]["p99"] > 0


def test_eval_beir_reports_the_rerank_stage(late_col: Path, beir: Path) -> None:
    res = runner.invoke(
        app,
        ["eval", "beir", str(beir), "--collection", str(late_col), "--reranker", "late",
         "--rerank-n", "20", "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["per_stage_ms"]["rerank"]["p50"] > 0
    assert report["config"]["reranker"] == "late" and report["config"]["rerank_n"] == 20
    assert 0.0 <= report["metrics"]["ndcg@10"] <= 1.0


def test_token_vectors_are_for_new_collections_and_late_needs_them(
    late_col: Path, beir: Path, tmp_path: Path
) -> None:
    res = runner.invoke(app, ["ingest", str(beir), "-c", str(late_col), "--token-vectors", "-q"])
    assert res.exit_code == 2 and "new collection" in res.output
    plain = tmp_path / "plain"
    assert runner.invoke(app, ["ingest", str(beir), "-c", str(plain), "-q"]).exit_code == 0
    res = runner.invoke(app, ["ask", str(plain), Q, "--reranker", "late"])
    assert res.exit_code == 2 and "--token-vectors" in res.output


def test_token_pool_halves_the_tokens_and_is_checked(
    late_col: Path, beir: Path, tmp_path: Path
) -> None:
    full, pooled = tmp_path / "full", late_col  # the default pools 2-fold
    args = ["ingest", str(beir), "-c", str(full), "--token-vectors", "--token-pool", "1", "-q"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    stats = [json.loads(runner.invoke(app, ["stats", str(c), "--json"]).stdout)["token_vectors"]
             for c in (full, pooled)]  # fmt: skip
    assert stats[1]["pool"] == 2 and stats[0]["pool"] == 1
    assert stats[0]["tokens"] / 2 <= stats[1]["tokens"] <= stats[0]["tokens"] / 2 + 30  # ⌈T/2⌉
    res = runner.invoke(app, ["ask", str(pooled), Q, "--reranker", "late", "--json"])
    assert res.exit_code == 0, res.output
    for bad in (["--token-pool", "2"], ["--token-vectors", "--token-pool", "0"]):
        res = runner.invoke(app, ["ingest", str(beir), "-c", str(tmp_path / "x"), *bad, "-q"])
        assert res.exit_code == 2 and "pool" in res.output and not (tmp_path / "x").exists()


def test_late_weight_sets_the_blend_and_bad_values_are_refused(late_col: Path, beir: Path) -> None:
    def ask(*extra: str) -> list[dict[str, object]]:
        args = ["ask", str(late_col), Q, "--reranker", "late", "--rerank-n", "10", "--json"]
        res = runner.invoke(app, [*args, *extra])
        assert res.exit_code == 0, res.output
        hits: list[dict[str, object]] = json.loads(res.stdout)["hits"]
        return hits

    alone = ask("--late-weight", "0")  # MaxSim alone: the rerank score is the raw MaxSim
    assert all(h["scores"]["rerank"] == h["scores"]["late"] for h in alone)  # type: ignore[index]
    blended = ask()  # the default blend: scores in [0, 1], the raw MaxSim kept beside
    assert all(0.0 <= h["scores"]["rerank"] <= 1.0 < h["scores"]["late"] for h in blended)  # type: ignore[index, operator]
    for cmd, bad, why in (
        (["ask", str(late_col), Q, "--reranker", "late"], "1.5", "[0, 1]"),
        (["ask", str(late_col), Q], "0.3", "--reranker late"),
        (["ask", str(late_col), Q, "--reranker", "maxsim"], "0.3", "late reranker only"),
        (["eval", "beir", str(beir), "--collection", str(late_col), "-q"], "0.3", "--reranker"),
    ):
        res = runner.invoke(app, [*cmd, "--late-weight", bad])
        assert res.exit_code == 2 and why in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
