"""``ragfleet serve --backend/--replicas/--address``: flags that cannot serve a fleet fail
with one line saying what to do, and exit code 2, before anything is opened."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from tests.e2e._server import free_port
from typer.testing import CliRunner

from ragfleet.cli import serve_cmds
from ragfleet.cluster.local_ray import LocalRayCluster


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("RAGFLEET_HOME", str(tmp_path))  # no cluster recorded
    a = typer.Typer()
    serve_cmds.register(a)
    return a


def _serve(app: typer.Typer, tmp_path: Path, *flags: str) -> str:
    args = ["serve", str(tmp_path / "c"), "--keys", str(tmp_path / "keys.json"), *flags]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
    return res.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--backend", "spark"], "backend must be ray or local, got 'spark'"),
        (["--backend", "local", "--replicas", "0"], "replicas must be between 1 and 16, got 0"),
        (["--backend", "local", "--replicas", "17"], "replicas must be between 1 and 16, got 17"),
        (["--backend", "local", "--workers", "2"], "a fleet is served by one process"),
        (["--replicas", "2"], "add --backend ray (or local)"),
        (["--address", "127.0.0.1:1"], "add --backend ray (or local)"),
        (["--backend", "local", "--address", "127.0.0.1:1"], "an address is for --backend ray"),
        (["--backend", "ray"], "no Ray cluster: start one with `ragfleet cluster up`"),
    ],
)
def test_bad_fleet_flags_fail_in_one_line(
    app: typer.Typer, tmp_path: Path, flags: list[str], message: str
) -> None:
    assert message in _serve(app, tmp_path, *flags)


def test_a_ray_address_nothing_answers_at_fails_fast(app: typer.Typer, tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    out = _serve(app, tmp_path, "--backend", "ray", "--address", dead)
    assert f"no Ray cluster answers at {dead}" in out and "ragfleet cluster up" in out
    LocalRayCluster(dead, (), str(tmp_path)).save()  # recorded, but down
    out = _serve(app, tmp_path, "--backend", "ray", "--replicas", "2")
    assert f"no Ray cluster answers at {dead}" in out
