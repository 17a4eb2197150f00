"""The ``ragfleet`` command end to end on a small corpus with the real model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragfleet.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    from tests.conftest import demo_docs

    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for d in demo_docs(40):
            row = {"_id": d.doc_id, "title": d.title, "text": d.text, "metadata": dict(d.metadata)}
            f.write(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="module")
def built(corpus: Path, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    col = tmp_path_factory.mktemp("cli") / "col"
    res = runner.invoke(
        app, ["ingest", str(corpus), "--collection", str(col), "--shards", "2", "-q"]
    )
    assert res.exit_code == 0, res.output
    return col


def test_search_json_shape(built: Path) -> None:
    res = runner.invoke(app, ["search", str(built), "Who won Super Bowl 50?", "--k", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["hits"]) == 3 and out["coverage"] == 1.0
    hit = out["hits"][0]
    assert {"rank", "doc_id", "chunk_id", "score", "scores", "text", "shard"} <= set(hit)
    assert {"embed", "search", "total"} <= set(out["timings_ms"])


def test_stats_and_incremental_ingest(built: Path, corpus: Path) -> None:
    res = runner.invoke(app, ["stats", str(built), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["documents"] == 40
    res = runner.invoke(app, ["ingest", str(corpus), "--collection", str(built), "-q"])
    assert res.exit_code == 0, res.output
    assert "0 written, 40 unchanged" in res.output


def test_compressed_collection_reports_bytes_per_vector(corpus: Path, tmp_path: Path) -> None:
    """A ``sq8+refine16`` collection: stats give RAM bytes per vector = the SQ8 code (d
    bytes) and disk bytes per vector >= code + float16 vector (d + 2d); searches take
    ``--oversample``/``--no-rescore`` and refuse an oversample out of bounds."""
    col = tmp_path / "sq8"
    args = ["ingest", str(corpus), "--collection", str(col), "--index", "sq8+refine16", "-q"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["stats", str(col), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    d = info["dim"]
    assert info["precision"] == "fp16"
    dense = info["shards"][0]["dense"]
    assert dense["vectors_on_disk"] == "fp16"
    assert d <= dense["ram_bytes_per_vector"] < 1.1 * d + 64
    assert dense["disk_bytes_per_vector"] >= 3 * d
    text = runner.invoke(app, ["stats", str(col)]).output
    assert "bytes per vector: RAM" in text and "vectors on disk: fp16" in text
    for extra in (["--oversample", "4"], ["--no-rescore"]):
        res = runner.invoke(app, ["search", str(col), "football", "--k", "3", "--json", *extra])
        assert res.exit_code == 0, res.output
        assert len(json.loads(res.stdout)["hits"]) == 3
    res = runner.invoke(app, ["search", str(col), "football", "--oversample", "0.5"])
    assert res.exit_code != 0 and "oversample must be between 1 and 100" in res.output


def test_filter_and_modes(built: Path) -> None:
    for mode in ("dense", "sparse", "hybrid"):
        res = runner.invoke(
            app,
            [
                "search",
                str(built),
                "football",
                "--mode",
                mode,
                "--json",
                "--filter",
                '{"article": "Super_Bowl_50"}',
            ],
        )
        assert res.exit_code == 0, res.output
        assert all(h["doc_id"].startswith("Super_Bowl_50") for h in json.loads(res.stdout)["hits"])


NESTED = '{{"not": ' * 200 + '{{"year": 1}}' + "}}" * 200  # braces doubled for .format
WIDE = '{{"or": [' + ", ".join(f'{{{{"y": {i}}}}}' for i in range(2000)) + "]}}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "{col}", "q", "--k", "0"], "k must be between 1 and 10,000"),
        (["search", "{col}", "q", "--k", "1000000000"], "k must be between 1 and 10,000"),
        (["search", "{col}", "q", "--k", "99999999999999999999"], "k must be between 1"),
        (["search", "{col}", "q", "--timeout-ms", "0"], "timeout_ms must be > 0"),
        (["search", "{col}", "q", "--timeout-ms", "-1"], "timeout_ms must be > 0"),
        (["search", "{col}", "q", "--replicas", "0"], "replicas must be between 1 and 16"),
        (["search", "{col}", "q", "--probe-shards", "0"], "probe_shards must be >= 1"),
        (["search", "{col}", "q", "--filter", NESTED], "nests deeper than 8"),
        (["search", "{col}", "q", "--filter", WIDE], "at most 256"),
        (["ingest", "{corpus}", "--collection", "{tmp}/new", "--shards", "0"], "n_shards"),
        (["ingest", "{corpus}", "--collection", "{tmp}/new", "--shards", "1000"], "n_shards"),
        (["search", "{tmp}/nope", "q"], "does not exist"),
        (["ingest", "{tmp}/missing.jsonl", "--collection", "{tmp}/new"], "does not exist"),
        (["ingest", "{corpus}", "--collection", "{tmp}/new", "--index", "bogus9"], "spec"),
        (["ingest", "{corpus}", "--collection", "{tmp}/new", "--chunker", "window:x"], "chunker"),
        (["ingest", "{empty}", "--collection", "{tmp}/new"], "no"),
        (["search", "{col}", "q", "--filter", "{{oops"], "not valid JSON"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, built: Path, corpus: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    fill = {"col": str(built), "tmp": str(tmp_path), "corpus": str(corpus), "empty": str(empty)}
    res = runner.invoke(app, [a.format(**fill) for a in args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "new").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".new")]


def test_console_script_reports_errors_without_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("ragfleet")
    proc = subprocess.run(
        [str(exe), "search", str(tmp_path / "none"), "q"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
