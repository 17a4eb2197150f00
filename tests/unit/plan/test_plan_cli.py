"""``ragfleet plan`` through typer: a report, JSON, a plot, and exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ragfleet.cli import plan_cmds
from ragfleet.plan import Calibration


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()
    plan_cmds.register(app)
    return app


def test_plan_json_and_plot(app: typer.Typer, cal: Calibration, tmp_path: Path) -> None:
    cal.save(tmp_path / "cal.json")
    args = ["plan", "--vectors", "1e9", "--qps", "5000", "--slo-ms", "900", "--index", "hnsw32"]
    args += [
        "--calibration",
        str(tmp_path / "cal.json"),
        "--json",
        "--plot",
        str(tmp_path / "p.png"),
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["index"] == "hnsw32" and out["shards"] >= 1 and out["meets_slo"] is True
    assert [s["name"] for s in out["stages"]] == ["embed", "search", "rerank", "generate"]
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_plan_report_uses_the_shipped_calibration(app: typer.Typer) -> None:
    r = CliRunner().invoke(app, ["plan", "--vectors", "1e8", "--qps", "100", "--slo-ms", "200"])
    assert r.exit_code == 0, r.output
    assert "SLO" in r.stdout and "bulk embedding" in r.stdout


@pytest.mark.parametrize(
    "extra",
    [
        ["--vectors", "-5", "--qps", "1", "--slo-ms", "1"],
        ["--vectors", "1e6", "--qps", "1", "--slo-ms", "1", "--index", "nope"],
        ["--vectors", "1e6", "--qps", "1", "--slo-ms", "1", "--ram-fill", "2"],
        ["--vectors", "1e6", "--qps", "1", "--slo-ms", "1", "--calibration", "/nonexistent"],
    ],
)
def test_bad_input_exits_2_with_one_line(app: typer.Typer, extra: list[str]) -> None:
    r = CliRunner().invoke(app, ["plan", *extra])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")


def test_calibrate_rejects_bad_config_before_measuring(app: typer.Typer, tmp_path: Path) -> None:
    app2 = typer.Typer()
    app2.command("x")(lambda: None)
    plan_cmds.register(app2)
    r = CliRunner().invoke(
        app2, ["bench", "calibrate", "--size", "10", "--out", str(tmp_path / "c")]
    )
    assert r.exit_code == 2 and "shard sizes" in r.stderr
    assert not (tmp_path / "c").exists()
