"""``ragfleet cluster status|down`` read the recorded state; nothing recorded is an error."""

from __future__ import annotations

import os

import pytest
import typer
from typer.testing import CliRunner

from ragfleet.cli import cluster_cmds
from ragfleet.cluster.local_ray import LocalRayCluster


@pytest.fixture
def app(tmp_path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAGFLEET_HOME", str(tmp_path))
    a = typer.Typer()
    cluster_cmds.register(a)
    return a


def test_status_and_down_without_a_cluster_fail_with_a_message(app: typer.Typer) -> None:
    for cmd in (["cluster", "status"], ["cluster", "down"]):
        res = CliRunner().invoke(app, cmd)
        assert res.exit_code == 2 and "no cluster recorded" in res.output


def test_status_reports_recorded_pids(app: typer.Typer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    LocalRayCluster("127.0.0.1:1", (os.getpid(), 2**22 + 7), str(tmp_path)).save()
    res = CliRunner().invoke(app, ["cluster", "status", "--json"])
    assert res.exit_code == 0, res.output
    assert '"alive": [\n    true,\n    false\n  ]' in res.output  # this process, a dead pid


def test_fleet_search_rejects_an_unknown_backend(app: typer.Typer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(app, ["fleet-search", str(tmp_path), "q", "--backend", "spark"])
    assert res.exit_code == 2 and "--backend must be ray or local" in res.output
