"""``ragfleet ask`` / ``budget`` / ``eval qa`` through typer on a tiny collection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ragfleet.cli import ask_cmds
from ragfleet.collection import Collection
from ragfleet.errors import InputError
from ragfleet.types import Document

pytestmark = pytest.mark.model

DOCS = [
    Document(
        "sb50",
        "Super Bowl 50 was played at Levi's Stadium in Santa Clara, California.",
        title="Super Bowl 50",
    ),
    Document("bread", "Sourdough bread is leavened by a starter of wild yeast.", title="Sourdough"),
    Document("rhine", "The Rhine flows from the Swiss Alps to the North Sea.", title="Rhine"),
]


@pytest.fixture(scope="module")
def col_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cli") / "col"
    Collection.build(path, DOCS).close()
    yield path


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    ask_cmds.register(app)
    return app


def test_ask_json_and_text(app: typer.Typer, col_dir: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["ask", str(col_dir), "Where was Super Bowl 50 played?", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "Levi's Stadium" in out["answer"] and out["citations"][0]["doc_id"] == "sb50"
    assert out["budget_ms"] == 1000.0 and set(out["timings_ms"]) >= {"embed", "generate", "total"}
    res = runner.invoke(app, ["ask", str(col_dir), "Where does the Rhine flow?"])
    assert (
        res.exit_code == 0
        and "[1] Rhine (rhine#0)" in res.stdout
        and "budget 1000 ms" in res.stdout
    )


def test_budget_table(app: typer.Typer, col_dir: Path, tmp_path: Path) -> None:
    qs = tmp_path / "q.txt"
    qs.write_text("where is Levi's Stadium\nwhat is sourdough\nwhere does the Rhine flow\n")
    res = CliRunner().invoke(app, ["budget", str(col_dir), "--queries", str(qs), "--json", "-q"])
    assert res.exit_code == 0, res.output
    table = json.loads(res.stdout)
    assert table["n"] == 3 and table["dominant"] in {"embed", "search", "rerank", "generate"}
    st = table["stages"]["total"]
    assert st["share"] == pytest.approx(st["p99"] / 1000.0)
    assert table["slo_ok"] == (st["p99"] <= 1000.0)


def test_read_questions_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        ask_cmds.read_questions(tmp_path / "none.txt")
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"_id": "1"}\n')
    with pytest.raises(InputError, match="'text' field"):
        ask_cmds.read_questions(bad)
