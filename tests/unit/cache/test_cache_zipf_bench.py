"""The Zipf cache benchmark's pieces: its formulas, and main() with a plugged-in compute."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "cache_zipf.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cache_zipf", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zipf_probabilities(bench: ModuleType) -> None:
    p = bench.zipf_probs(300, 1.1)
    ranks = np.arange(1, 301)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] / p[9] == pytest.approx(10**1.1)  # p_1 / p_10 = (10 / 1)^s
    assert np.all(np.diff(p) < 0)
    assert p == pytest.approx(ranks**-1.1 / np.sum(ranks**-1.1))


def test_expected_hit_rate_matches_simulation(bench: ModuleType) -> None:
    p, n = bench.zipf_probs(300, 1.1), 2000
    rng = np.random.default_rng(0)
    simulated = [1 - len(set(rng.choice(300, size=n, p=p))) / n for _ in range(200)]
    assert bench.expected_hit_rate(p, n) == pytest.approx(np.mean(simulated), abs=0.005)


def test_payload_is_about_5kb_of_json(bench: ModuleType) -> None:
    body = json.loads(bench.make_payload("what causes cancer in mice"))
    assert len(body["hits"]) == 10
    assert 4000 <= len(bench.make_payload("what causes cancer in mice")) <= 7000


def test_main_with_a_plugged_in_compute(bench: ModuleType, tmp_path: Path) -> None:
    asked: list[str] = []

    def compute(query: str) -> bytes:
        asked.append(query)
        return json.dumps({"query": query, "hits": []}).encode()

    argv = ["--requests", "300", "--baseline-requests", "20", "--no-kill", "--out", str(tmp_path)]
    report = bench.main(argv, compute=compute)
    distinct = report["workload"]["distinct_requested"]
    memory = report["backends"]["memory"]
    assert memory["failed"] == 0
    assert memory["hit_rate"] == pytest.approx(1 - distinct / 300)  # unbounded: cold misses only
    assert memory["miss_ms"]["n"] == distinct
    redis_ran = "hit_rate" in report["backends"]["redis"]
    assert len(asked) == 20 + distinct * (2 if redis_ran else 1)
    assert (tmp_path / "cache_zipf.json").exists()
    assert (tmp_path / "cache_zipf.png").stat().st_size > 0
