"""recall@k, exact search, the sweep, and the ``ragfleet bench ann`` command."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ragfleet.cli.bench import register
from ragfleet.errors import InputError
from ragfleet.eval.ann import (
    EF_SWEEP,
    OVERSAMPLE_SWEEP,
    SweepConfig,
    default_specs,
    exact_search,
    paired_times,
    recall_at_k,
    run_sweep,
    sweep_points,
)
from ragfleet.index.dense import DEFAULT_OVERSAMPLE, DenseIndex
from ragfleet.index.specs import DenseSpec


def test_recall_formula_by_hand() -> None:
    found = [[1, 2, 3], [7, 8, -1]]
    truth = [[3, 2, 9, 1], [8, 0, 5, 7]]
    # query 0: {1,2,3} ∩ {3,2,9} = 2; query 1: {7,8,-1} ∩ {8,0,5} = 1  -> (2 + 1) / (2 * 3)
    assert recall_at_k(found, truth, 3) == pytest.approx((2 + 1) / (2 * 3))
    assert recall_at_k(found, truth, 1) == pytest.approx((0 + 0) / 2)
    assert recall_at_k(np.full((2, 3), -1), [[-1, -1, -1]] * 2, 3) == 0.0


@given(st.integers(1, 20), st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_recall_is_one_on_itself_and_in_unit_range(nq: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = np.stack([rng.permutation(50)[:k] for _ in range(nq)])
    found = np.stack([rng.permutation(50)[:k] for _ in range(nq)])
    assert recall_at_k(truth, truth, k) == 1.0
    assert 0.0 <= recall_at_k(found, truth, k) <= 1.0


def test_recall_rejects_bad_shapes() -> None:
    with pytest.raises(InputError):
        recall_at_k([[1, 2]], [[1, 2], [3, 4]], 2)
    with pytest.raises(InputError, match="columns"):
        recall_at_k([[1]], [[1, 2]], 2)
    with pytest.raises(InputError):
        recall_at_k([[1]], [[1]], 0)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_exact_search_matches_numpy(metric: str) -> None:
    rng = np.random.default_rng(0)
    x, q = rng.normal(size=(300, 8)), rng.normal(size=(5, 8))
    want = q @ x.T if metric == "ip" else -((q[:, None, :] - x[None]) ** 2).sum(-1)
    scores, rows = exact_search(x, q, 4, metric)  # type: ignore[arg-type]
    np.testing.assert_array_equal(rows, np.argsort(-want, axis=1)[:, :4])
    np.testing.assert_allclose(scores, np.sort(want, axis=1)[:, ::-1][:, :4], rtol=1e-4)


def test_default_specs_and_sweep_points() -> None:
    assert default_specs(384) == [
        "flat", "hnsw32", "ivf", "ivf,pq48", "ivf,pq48+refine", "opq,ivf,pq48+refine",
        "ivf,pq96x4fs+refine", "sq8", "sq4+refine", "hnsw32,sq8", "binary", "hnsw32,binary",
        "ivf,rabitqfs+refine",
    ]  # fmt: skip
    assert "ivf,pq98" in default_specs(784)  # 784 / 98 = 8 dims per sub-quantizer
    assert "binary" not in default_specs(30)  # 30 bits do not pack into bytes
    for spec in default_specs(384):  # every family, all parse
        DenseSpec.parse(spec)
    assert sweep_points(DenseIndex("flat", 4)) == [{}]
    hnsw = sweep_points(DenseIndex("hnsw8", 4))
    assert hnsw == [{"ef_search": ef} for ef in (16, 32, 64, 128, 256, 512)]
    ivf = DenseIndex("ivf16", 4)
    ivf.train(np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32))
    assert sweep_points(ivf) == [{"nprobe": p} for p in (1, 2, 4, 8)]  # up to nlist / 2
    # +refine specs: the structure's sweep at the default oversample, then the oversample
    # sweep at efSearch 128 / nprobe 16
    sq = DenseIndex("sq8+refine", 4)
    default = DEFAULT_OVERSAMPLE["sq8"]
    others = [o for o in OVERSAMPLE_SWEEP if o != default]
    assert sweep_points(sq) == [{"oversample": default}] + [{"oversample": o} for o in others]
    binary = sweep_points(DenseIndex("hnsw8,binary", 8))
    default = DEFAULT_OVERSAMPLE["binary"]
    others = [o for o in OVERSAMPLE_SWEEP if o != default]
    assert binary[:6] == [{"ef_search": ef, "oversample": default} for ef in EF_SWEEP]
    assert binary[6:] == [{"ef_search": 128, "oversample": o} for o in others]


def tiny_dataset(folder: Path, n: int = 600, d: int = 8, nq: int = 12) -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(n, d)).astype(np.float32)
    query = rng.normal(size=(nq, d)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "base.npy", base)
    np.save(folder / "query.npy", query)
    np.save(folder / "groundtruth.npy", exact_search(base, query, 20, "l2")[1])


def test_run_sweep_flat_is_exact_and_reports_raw_faiss(tmp_path: Path) -> None:
    tiny_dataset(tmp_path)
    base, query = np.load(tmp_path / "base.npy"), np.load(tmp_path / "query.npy")
    truth = np.load(tmp_path / "groundtruth.npy")
    cfg = SweepConfig(k=10, batch=4, min_time_s=0.0, min_pairs=5)
    runs = run_sweep(base, query, truth, ["flat", "hnsw8"], "l2", cfg)
    assert [r.spec for r in runs] == ["flat"] + ["hnsw8"] * 6
    assert runs[0].recall == 1.0
    assert all(r.qps > 0 and r.raw_faiss_qps > 0 for r in runs)
    d = runs[1].to_dict()
    assert d["params"] == {"ef_search": 16} and d["ratio"] == round(runs[1].ratio, 4)


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_writes_results_and_plot(tmp_path: Path) -> None:
    tiny_dataset(tmp_path / "data")
    out = tmp_path / "out"
    args = ["bench", "ann", str(tmp_path / "data"), "--index", "flat", "--index", "ivf16"]
    args += ["--min-time", "0", "--pairs", "3", "--out", str(out), "--queries", "6"]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    runs = json.loads((out / "results.json").read_text())
    assert [r["spec"] for r in runs] == ["flat"] + ["ivf16"] * 4
    assert set(runs[0]) >= {"spec", "params", "recall@10", "qps", "raw_faiss_qps", "ratio"}
    assert runs[0]["recall@10"] == 1.0
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--index", "lsh"], "unknown dense index spec"),
        (["--k", "0"], "k, batch and min_pairs must be >= 1"),
        (["--metric", "cos"], "--metric must be l2 or ip"),
        (["--k", "30"], "groundtruth has 20 neighbours"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, extra: list[str], message: str) -> None:
    tiny_dataset(tmp_path / "data")
    result = CliRunner().invoke(cli(), ["bench", "ann", str(tmp_path / "data"), *extra])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0


def test_cli_missing_dir_and_dimension_mismatch(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["bench", "ann", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
    tiny_dataset(tmp_path / "data")
    np.save(tmp_path / "data" / "query.npy", np.zeros((12, 5), np.float32))
    result = CliRunner().invoke(cli(), ["bench", "ann", str(tmp_path / "data")])
    assert result.exit_code == 2 and "dimension 8 but query has 5" in result.output


def test_paired_times_attribute_each_call_to_its_side() -> None:
    """``a`` sleeps 2 ms per call, ``b`` not at all: whichever goes first, a's times are
    the long ones (per query: divided by the batch of 2)."""
    batches = [np.zeros((2, 3), np.float32)]
    ta, tb = paired_times(lambda x: time.sleep(0.002), lambda x: None, batches, 6, 0.0)
    assert len(ta) == len(tb) == 6
    assert np.all(ta >= 0.002 / 2) and np.all(tb < 0.001)
    with pytest.raises(InputError, match="no queries"):
        paired_times(lambda x: None, lambda x: None, [], 1, 0.0)


def test_cli_without_index_sweeps_every_family_with_bytes_per_vector(tmp_path: Path) -> None:
    """No ``--index``: one spec of every family (compressed ones included) in results.json,
    each run with its RAM and disk bytes per vector — ``+refine`` specs hold the float32
    vectors (``4·d`` bytes) on disk beside their codes, flat holds ``4·d`` in both."""
    d = 16
    tiny_dataset(tmp_path / "data", n=3000, d=d, nq=4)
    out = tmp_path / "out"
    args = ["bench", "ann", str(tmp_path / "data"), "--min-time", "0", "--pairs", "2"]
    result = CliRunner().invoke(cli(), [*args, "--out", str(out), "--queries", "4"])
    assert result.exit_code == 0, result.output
    runs = json.loads((out / "results.json").read_text())
    specs = list(dict.fromkeys(r["spec"] for r in runs))
    unsized = [re.sub(r"ivf\d+", "ivf", s) for s in specs]  # nlist is chosen at train time
    assert unsized == [DenseSpec.parse(s).canonical for s in default_specs(d)]
    assert {"binary+refine", "sq8"} <= set(specs) and any("+refine" in s for s in specs)
    for r in runs:
        assert r["ram_bytes_per_vector"] > 0 and r["disk_bytes_per_vector"] > 0, r
        if "+refine" in r["spec"]:
            assert r["disk_bytes_per_vector"] >= 4 * d, r
    flat = next(r for r in runs if r["spec"] == "flat")
    assert flat["ram_bytes_per_vector"] == flat["disk_bytes_per_vector"] == 4 * d
