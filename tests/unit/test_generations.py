"""Generations: reindex under a new encoder beside the live one, resume, verify, swap
atomically, reload between queries, list and gc (real int8 and torch MiniLM encoders)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import demo_docs
from typer.testing import CliRunner

import ragfleet.collection.generations as gens
from ragfleet.cli.app import app
from ragfleet.collection import Collection
from ragfleet.collection.layout import Layout
from ragfleet.errors import CollectionError
from ragfleet.types import Results

QUERIES = ["Super Bowl halftime show", "Denver Broncos defense", "Santa Clara stadium"]


N_DOCS = 24


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> Path:
    path = tmp_path_factory.mktemp("gens") / "c"
    Collection.build(path, demo_docs(N_DOCS), encoder=encoder).close()
    return path


@pytest.fixture
def built(tmp_path: Path, template: Path) -> Path:
    """A fresh copy of a built single-generation collection, per test."""
    shutil.copytree(template, tmp_path / "c")
    return tmp_path / "c"


def _hits(res: Results) -> list[tuple[str, float]]:
    return [(h.chunk_id, round(h.score, 5)) for h in res.hits]


def test_a_collection_without_generations_is_its_own_root(built: Path) -> None:
    assert Layout.of(built).current() == built
    [g] = gens.list_generations(built)
    assert (g.name, g.state, g.encoder) == ("root", "current", "minilm-int8")
    assert Layout.of(built).next_name() == "gen-000002"


@pytest.mark.slow
def test_reindex_to_the_torch_model_swaps_between_queries(built: Path, encoder: Any) -> None:
    col = Collection.open(built, encoder=encoder, read_only=True)  # a server's reader
    old_fp = col.info.contract.fingerprint()
    before = {q: _hits(col.search(q, k=5, mode="dense")) for q in QUERIES}
    report = gens.reindex(built, "minilm")
    assert (report.generation, report.documents) == ("gen-000002", N_DOCS)
    assert col.search(QUERIES[0], k=5, mode="dense") is not None  # still the old generation
    assert _hits(col.search(QUERIES[0], k=5, mode="dense")) == before[QUERIES[0]]
    with Collection.open(built) as fresh:
        after = {q: _hits(fresh.search(q, k=5, mode="dense")) for q in QUERIES}
        assert fresh.info.contract.fingerprint() != old_fp
        assert fresh.stats()["chunks"] == col.stats()["chunks"]
    seen: list[tuple[str, list[tuple[str, float]]]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def query() -> None:
        while not stop.is_set():
            for q in QUERIES:
                try:
                    seen.append((q, _hits(col.search(q, k=5, mode="dense"))))
                except BaseException as e:  # any failed query fails the test
                    failures.append(e)
                time.sleep(0.001)

    reader = threading.Thread(target=query)
    reader.start()
    try:
        assert col.reload() is True
    finally:
        stop.set()
        reader.join()
    assert not failures, failures
    assert all(hits in (before[q], after[q]) for q, hits in seen)  # never a mix
    assert col.info.contract.fingerprint() != old_fp and col.reload() is False
    col.close()
    states = {g.name: g.state for g in gens.list_generations(built)}
    assert states == {"root": "ready", "gen-000002": "current"}


def test_reindex_resumes_where_it_stopped(
    built: Path, encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragfleet.collection.rebuild as rebuild

    real = rebuild._place
    calls = {"n": 0}

    def stop_after_two(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt  # the operator stops the reindex
        return real(*args)

    monkeypatch.setattr(rebuild, "_place", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        gens.reindex(built, "minilm-int8", batch_docs=5)
    assert Layout.of(built).current_name() == "root"
    assert Layout.of(built).building() == "gen-000002"
    monkeypatch.setattr(rebuild, "_place", real)
    report = gens.reindex(built, "minilm-int8", batch_docs=5)
    assert (report.generation, report.documents_embedded) == ("gen-000002", N_DOCS - 10)
    assert Layout.of(built).current_name() == "gen-000002"


def test_reindex_and_gc_are_refused_while_another_writer_holds_the_collection(
    built: Path, encoder: Any
) -> None:
    from ragfleet.errors import CollectionLockedError

    with Collection.open(built, encoder=encoder):
        with pytest.raises(CollectionLockedError, match=f"process {os.getpid()}"):
            gens.reindex(built, "minilm-int8")
        with pytest.raises(CollectionLockedError):
            gens.gc_generations(built)
    assert Layout.of(built).current_name() == "root" and Layout.of(built).building() is None


def test_gc_removes_old_generations_and_the_cli_lists_them(built: Path, encoder: Any) -> None:
    gens.reindex(built, "minilm-int8")
    with pytest.raises(CollectionError, match="not verified"):
        (built / "gen-000003").mkdir()
        gens.swap_current(built, "gen-000003")
    (built / "gen-000003").rmdir()
    runner = CliRunner()
    out = runner.invoke(app, ["generations", str(built)])
    assert out.exit_code == 0 and "gen-000002   current" in out.output, out.output
    out = runner.invoke(app, ["generations", str(built), "--gc", "--json"])
    assert out.exit_code == 0 and '"removed": [\n    "root"\n  ]' in out.output, out.output
    assert not (built / "collection.json").exists() and not (built / "shard-000").exists()
    with Collection.open(built, encoder=encoder) as col:
        assert col.search(QUERIES[1], k=1).hits
